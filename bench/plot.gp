# Plots echo_bench CSV output (see docs/performance.md).
#   gnuplot -e "csv='results.csv'; out='docs/perf'" bench/plot.gp
# Columns: server,shards,size,req_s,mib_s,p50_us,p99_us,cpu_us_per_req,
#          idle_bytes_per_conn,ir_per_echo
if (!exists("csv")) csv = 'results.csv'
if (!exists("out")) out = 'perf'
set datafile separator ','
set terminal pngcairo size 1100,420 font ",10"
set key top left
set grid
set logscale x 2
set xlabel 'message size (bytes)'

sel(name, n) = (strcol(1) eq name && $2 == n)

set output out.'-size.png'
set multiplot layout 1,2 title 'echo, 50 connections, 1 shard, server and load generator on separate cores'
set ylabel 'round trips per second'
plot csv using (sel('asio',1) ? $3 : 1/0):4 with linespoints title 'raw Asio (baseline)', \
     csv using (sel('shardwire',1) ? $3 : 1/0):4 with linespoints title 'shardwire, typed protocol', \
     csv using (sel('shardwire-cb',1) ? $3 : 1/0):4 with linespoints title 'shardwire, callback protocol'
set ylabel 'server CPU per round trip (us, user+sys)'
plot csv using (sel('asio',1) ? $3 : 1/0):8 with linespoints title 'raw Asio (baseline)', \
     csv using (sel('shardwire',1) ? $3 : 1/0):8 with linespoints title 'shardwire, typed protocol', \
     csv using (sel('shardwire-cb',1) ? $3 : 1/0):8 with linespoints title 'shardwire, callback protocol'
unset multiplot

unset logscale x
set xlabel 'shards'
set xtics 1
set output out.'-shards.png'
set multiplot layout 1,2 title 'shardwire by shard count (1 KiB echo, 50 connections)'
set ylabel 'round trips per second'
plot csv using (strcol(1) eq 'shardwire' && $3 == 1024 ? $2 : 1/0):4 with linespoints title 'typed protocol', \
     csv using (strcol(1) eq 'shardwire-cb' && $3 == 1024 ? $2 : 1/0):4 with linespoints title 'callback protocol'
set ylabel 'server CPU per round trip (us)'
plot csv using (strcol(1) eq 'shardwire' && $3 == 1024 ? $2 : 1/0):8 with linespoints title 'typed protocol', \
     csv using (strcol(1) eq 'shardwire-cb' && $3 == 1024 ? $2 : 1/0):8 with linespoints title 'callback protocol'
unset multiplot
