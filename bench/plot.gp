# Plots echo_bench CSV output (see docs/performance.md).
#   gnuplot -e "csv='docs/perf-results.csv'; shards_csv='docs/perf-shards.csv'; out='docs/perf'" bench/plot.gp
# (shards_csv: the run by shard count; the size run's CSV if not given)
# Columns: server,shards,size,req_s,mib_s,p50_us,p99_us,cpu_us_per_req,
#          idle_bytes_per_conn,ir_per_echo,cpu_ratio (median of the per-round
#          ratios to Asio's CPU per request; 0 for Asio)
if (!exists("csv")) csv = 'results.csv'
if (!exists("out")) out = 'perf'
if (!exists("shards_csv")) shards_csv = csv
set datafile separator ','
set terminal pngcairo size 1100,420 font ",10"
set key bottom left
set grid
series(prefix) = sprintf("< grep '^%s' %s | sort -t, -k3,3n", prefix, csv)
by_shards(prefix) = sprintf("< grep '^%s' %s | sort -t, -k2,2n", prefix, shards_csv)

set output out.'-size.png'
set logscale x 2
set xlabel 'message size (bytes)'
set yrange [0:*]
set multiplot layout 1,2 title 'echo, 50 connections, 1 shard; server and load generator on separate cores'
set ylabel 'round trips per second'
plot series('asio,1,') using 3:4 with linespoints title 'raw Asio (baseline)', \
     series('shardwire,1,') using 3:4 with linespoints title 'shardwire, typed protocol', \
     series('shardwire-cb,1,') using 3:4 with linespoints title 'shardwire, callback protocol'
set key top right
set ylabel 'server CPU per round trip / raw Asio''s (paired rounds)'
set yrange [0.8:1.3]
plot 1.0 with lines dt 2 lc 'black' title 'raw Asio (baseline)', \
     1.1 with lines dt 3 lc 'red' title 'target (1.10)', \
     series('shardwire,1,') using 3:11 with linespoints title 'shardwire, typed protocol', \
     series('shardwire-cb,1,') using 3:11 with linespoints title 'shardwire, callback protocol'
set yrange [0:*]
unset multiplot

set output out.'-shards.png'
unset logscale x
set xlabel 'shards (threads for Asio)'
set xtics 1
set xrange [0.8:2.2]
set key bottom left
set multiplot layout 1,2 title 'by shard count, 1 KiB echo, nothing pinned: on 2 cores the 2nd shard shares a core with the load generator'
set ylabel 'round trips per second'
plot by_shards('asio-mt,[0-9]*,1024,') using 2:4 with linespoints title 'Asio, an io_context per thread' noenhanced, \
     by_shards('shardwire,[0-9]*,1024,') using 2:4 with linespoints title 'typed protocol', \
     by_shards('shardwire-cb,[0-9]*,1024,') using 2:4 with linespoints title 'callback protocol'
set ylabel 'server CPU per round trip / raw Asio''s (1 shard)'
set yrange [0.8:1.3]
plot by_shards('asio-mt,[0-9]*,1024,') using 2:11 with linespoints title 'Asio, an io_context per thread' noenhanced, \
     by_shards('shardwire,[0-9]*,1024,') using 2:11 with linespoints title 'typed protocol', \
     by_shards('shardwire-cb,[0-9]*,1024,') using 2:11 with linespoints title 'callback protocol'
unset multiplot
