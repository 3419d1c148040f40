# SVG charts beside the Markdown tables of bench/ (sourced by the scripts). gnuplot draws them (Debian: gnuplot-nox);
# without it, or with CHARTS_DIR set to "", a script prints its tables only and says so once.
#
# CHARTS_DIR (default: the current directory) is where the .svg files go; each chart is announced in the output as a
# Markdown image line, ![title](path), right after its table.

CHARTS_DIR=${CHARTS_DIR-.}
charts_ok() {
	[[ -n $CHARTS_DIR ]] || return 1
	if ! command -v gnuplot >/dev/null; then
		[[ -n ${charts_warned:-} ]] || echo "charts: gnuplot not installed (apt-get install gnuplot-nox): no SVG" >&2
		charts_warned=1
		return 1
	fi
	mkdir -p "$CHARTS_DIR"
}

# The common look: one font, a light grid, no border clutter.
charts_head() { # OUT TITLE XLABEL YLABEL
	cat <<-GP
		set terminal svg size 720,400 dynamic noenhanced font "sans,12" background rgb "white"
		set output "$1"
		set title "$2"
		set xlabel "$3"
		set ylabel "$4"
		set grid ytics lc rgb "#dddddd"
		set border 3
		set tics nomirror
		set key top left
	GP
}

# chart_bars NAME TITLE YLABEL DATA: DATA has "label value" lines; one bar each, the value written on it.
chart_bars() {
	charts_ok || return 0
	local out=$CHARTS_DIR/$1.svg
	{
		charts_head "$out" "$2" "" "$3"
		cat <<-GP
			set style fill solid 0.8 noborder
			set boxwidth 0.6
			set yrange [0:*]
			unset key
			plot "$4" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
			     "" using 0:2:(sprintf("%g", \$2)) with labels offset 0,0.7
		GP
	} | gnuplot 2>&1 | sed 's/^/charts: gnuplot: /' >&2
	echo
	echo "![$2]($out)"
}

# chart_lines NAME TITLE XLABEL YLABEL DATA "col:title" ...: DATA has whitespace-separated columns, x in column 1.
chart_lines() {
	charts_ok || return 0
	local name=$1 title=$2 xl=$3 yl=$4 data=$5 out plot="" spec
	shift 5
	out=$CHARTS_DIR/$name.svg
	for spec in "$@"; do
		plot+="${plot:+, }\"$data\" using 1:${spec%%:*} with linespoints pt 7 ps 0.5 title \"${spec#*:}\""
	done
	{
		charts_head "$out" "$title" "$xl" "$yl"
		echo "set yrange [0:*]"
		echo "plot $plot"
	} | gnuplot 2>&1 | sed 's/^/charts: gnuplot: /' >&2
	echo
	echo "![$title]($out)"
}
