"""Flatness checks of a server's (time, RSS, fds) samples after warm-up."""
import statistics

MIN_SLOPE_SPAN = 300.0  # s: below this a slope says more about noise


def slope_per_minute(points):
    """Least-squares slope of (t, y) in y units per minute."""
    n = len(points)
    if n < 3:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (y - my) for t, y in points) / den


def summarize(samples, warm_at):
    """Figures of one process's series; RSS in KiB."""
    after = [s for s in samples if s[0] >= warm_at]
    if len(after) < 3:
        return None
    rss = [r for _, r, _ in after]
    fds = [f for _, _, f in after]
    first = statistics.median(rss[:3])
    last = statistics.median(rss[-3:])
    second_half = after[len(after) // 2:]
    span = second_half[-1][0] - second_half[0][0]
    return {
        'samples': len(samples),
        'samples_after_warmup': len(after),
        'rss_start_kib': samples[0][1],
        'rss_warm_kib': first,
        'rss_end_kib': last,
        'rss_max_kib': max(rss),
        'rss_growth_kib': last - first,
        'rss_slope_kib_per_min': slope_per_minute(
            [(t, r) for t, r, _ in second_half]),
        'slope_span_s': span,
        'slope_checked': span >= MIN_SLOPE_SPAN,
        'fds_min': min(fds),
        'fds_max': max(fds),
    }
