# bench/pg/plot.gp — the two charts of bench/results/pg.md, drawn by
# bench/pg/report.sh with gnuplot -e "ratios=...; heap=...; strata=...;
# out_ratios=...; out_bloat=..." plot.gp.
#
# ratios: "label"<TAB>advantage, where advantage > 1 means strata did better
#         than heap (heap/strata for lower-is-better metrics, strata/heap
#         for higher-is-better ones), so every bar reads the same way.
# heap, strata: am<TAB>seconds<TAB>bytes samples of the sustained-update run.

# fmt='png' (optional) draws PNGs instead, e.g. to look at them locally.
if (exists("fmt") && fmt eq "png") {
	set terminal pngcairo size 900,560 font "sans,10" background rgb "white"
} else {
	set terminal svg size 900,560 dynamic font "sans,12" background rgb "white"
}
set datafile separator "\t"

set output out_ratios
set title "strata relative to heap (medians): bars right of 1 = strata better, log scale"
set style fill solid 0.8 border -1
set logscale x 2
set xrange [1.0/64:64]
set xtics ("1/64" 0.015625, "1/32" 0.03125, "1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
set grid xtics
set yrange [:] reverse
set ytics noenhanced
set offsets 0, 0, 0.6, 0.6
set lmargin 26
unset key
# Each bar runs from 1 to the value (x, y, xlow, xhigh, ylow, yhigh).
plot ratios using (1):0:($2 < 1 ? $2 : 1):($2 < 1 ? 1 : $2):($0 - 0.35):($0 + 0.35):($2 < 1 ? 0xcc5544 : 0x4a9a5a):ytic(1) \
	with boxxyerror lc rgb variable, \
     '' using 2:0:(sprintf("%.2f", $2)):($2 < 1 ? 0 : 0) with labels left offset 0.6,0 notitle

# a run without the sustained-update workload (--only) has no bloat chart
if (!exists("out_bloat") || out_bloat eq "") exit

set output out_bloat
unset logscale x
set autoscale
set xrange [0:*]
set yrange [0:*] noreverse
set xtics auto
set ytics auto
set offsets 0, 0, 0, 0
set lmargin 10
unset grid
set grid
set key top left
set title "table size under sustained single-row updates"
set xlabel "seconds"
set ylabel "MB"
plot heap using 2:($3/1048576) with linespoints lw 2 lc rgb "#cc7722" title "heap", \
     strata using 2:($3/1048576) with linespoints lw 2 lc rgb "#4a7ab5" title "strata"
