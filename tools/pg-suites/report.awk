# tools/pg-suites/report.awk — judges one pg_regress / pg_isolation_regress
# run against the allowlist (test/pg-suites/allowlist.txt).
#
# Usage:
#   awk -f report.awk -v suite=regress -v unexpected=U.diffs -v allowed=A.diffs \
#       -v stale=S.txt -v counts=C.txt \
#       allowlist.txt expected-tests.txt regression.out regression.diffs
#
# (regression.diffs may be /dev/null when every test passed.)
#
# Prints one line per test: "ok", "FAILED (allowed: <reason>)",
# "FAILED (unexpected)" or "NOT RUN (unexpected)" (a test of the schedule that
# pg_regress never reported, e.g. because the suite hit its time limit).
# Writes the diffs of unexpected failures to `unexpected`, those of allowed
# ones to `allowed`, allowlist entries of this suite whose test passed to
# `stale`, and "ok allowed unexpected notrun" to `counts`.
#
# A failure is allowed only when the allowlist has an entry for the test and,
# if that entry has `match` patterns, every changed line of the test's diff
# (a "+" or "-" line, without that first character) matches one of them: an
# entry explains a kind of difference, not whatever else the test may break.
# An entry with a `reorder` line first cancels each removed line against an
# identical added line (rows a query without ORDER BY returns in another
# order); only the lines left over must match its patterns, and with no
# patterns none may be left. A test whose process exited with an error
# (pg_regress: "test process exited with exit code N") is never allowed,
# unless its entry has an `exits N` line for exactly that code: for an
# isolation spec whose setup cannot run on strata tables by nature (exit
# code 1). A lost connection (exit code 2) should never be allowed.

function trim(s)
{
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

# Which file is being read: 1 allowlist, 2 expected tests, 3 status, 4 diffs.
FNR == 1 { fileno++ }

# --- allowlist ---------------------------------------------------------------
fileno == 1 && /^[ \t]*(#|$)/ { next }
fileno == 1 && /^[ \t]+match[ \t]/ {
	if (cur == "")
	{
		printf "allowlist line %d: `match` before any entry\n", FNR > "/dev/stderr"
		exit 2
	}
	pat = $0
	sub(/^[ \t]+match[ \t]+/, "", pat)
	npat[cur]++
	pats[cur, npat[cur]] = pat
	next
}
fileno == 1 && /^[ \t]+reorder[ \t]*$/ {
	if (cur == "")
	{
		printf "allowlist line %d: `reorder` before any entry\n", FNR > "/dev/stderr"
		exit 2
	}
	reorder[cur] = 1
	next
}
fileno == 1 && /^[ \t]+exits[ \t]+[0-9]+[ \t]*$/ {
	if (cur == "")
	{
		printf "allowlist line %d: `exits` before any entry\n", FNR > "/dev/stderr"
		exit 2
	}
	allowed_exit[cur] = "test process exited with exit code " $2
	next
}
fileno == 1 && /^[ \t]/ {
	printf "allowlist line %d: indented line is not `match <ERE>`, `reorder` or `exits <code>`\n", FNR > "/dev/stderr"
	exit 2
}
fileno == 1 {
	key = $1
	reason = trim(substr($0, length($1) + 1))
	if (key !~ /^(regress|isolation)\/[^\/]+$/ || reason == "")
	{
		printf "allowlist line %d: want `<suite>/<test> <reason>`\n", FNR > "/dev/stderr"
		exit 2
	}
	split(key, kp, "/")
	cur = ""
	if (kp[1] != suite)
	{
		# Patterns that follow belong to another suite's entry: park them.
		cur = "\001other"
		next
	}
	cur = kp[2]
	why[cur] = reason
	next
}

# --- tests the schedule asked for --------------------------------------------
fileno == 2 && NF > 0 {
	if (!($1 in wanted))
	{
		wanted[$1] = 1
		order[++nwanted] = $1
	}
	next
}

# --- pg_regress status lines ---------------------------------------------------
#   test name      ... ok        12 ms
#        name      ... FAILED    12 ms
#        name      ... FAILED (test process exited with exit code 2)   12 ms
#        name      ... failed (ignored)
fileno == 3 && / \.\.\. / {
	line = $0
	sub(/^test /, "", line)
	name = trim(substr(line, 1, index(line, " ... ") - 1))
	res = substr(line, index(line, " ... ") + 5)
	if (name == "" || name ~ / /)
		next
	status[name] = (res ~ /^ok/) ? "ok" : "failed"
	if (res ~ /\(test process/)
	{
		note = res
		sub(/^[^(]*\(/, "", note)
		sub(/\).*$/, "", note)
		detail[name] = note
	}
	if (!(name in wanted))
	{
		wanted[name] = 1
		order[++nwanted] = name
	}
	next
}

# --- regression.diffs: one "diff ..." header per failing test ---------------
fileno == 4 && /^diff / {
	# The results file is the last word: .../results/<test>.out
	f = $NF
	sub(/^.*\//, "", f)
	sub(/\.out$/, "", f)
	dtest = f
	ndiff[dtest]++
	diff[dtest] = diff[dtest] $0 "\n"
	next
}
fileno == 4 && dtest != "" {
	diff[dtest] = diff[dtest] $0 "\n"
	if ($0 ~ /^(\+\+\+|---) / || $0 ~ /^@@/)
		next
	if ($0 ~ /^[-+]/)
	{
		body = substr($0, 2)
		nchanged[dtest]++
		if (dtest in reorder)
		{
			# judged at the end, once moved lines have cancelled out
			balance[dtest, body] += ($0 ~ /^-/) ? 1 : -1
			next
		}
		if (dtest in npat)
		{
			hit = 0
			for (i = 1; i <= npat[dtest]; i++)
				if (body ~ pats[dtest, i])
				{
					hit = 1
					break
				}
			if (!hit)
			{
				unexplained[dtest]++
				if (!(dtest in first_unexplained))
					first_unexplained[dtest] = $0
			}
		}
	}
	next
}

END {
	if (fileno < 4 && nwanted == 0)
		exit 2
	# reorder entries: lines left after cancelling removed against added
	for (k in balance)
	{
		if (balance[k] == 0)
			continue
		split(k, kb, SUBSEP)
		t = kb[1]
		hit = 0
		for (i = 1; i <= npat[t]; i++)
			if (kb[2] ~ pats[t, i])
			{
				hit = 1
				break
			}
		if (!hit)
		{
			unexplained[t] += (balance[k] > 0) ? balance[k] : -balance[k]
			if (!(t in first_unexplained))
				first_unexplained[t] = ((balance[k] > 0) ? "-" : "+") kb[2]
		}
	}
	printf "" > unexpected
	printf "" > allowed
	printf "" > stale
	n_ok = n_allowed = n_unexp = n_notrun = 0
	for (k = 1; k <= nwanted; k++)
	{
		t = order[k]
		if (!(t in status))
		{
			printf "  %-40s NOT RUN (unexpected)\n", t
			n_notrun++
			continue
		}
		if (status[t] == "ok")
		{
			printf "  %-40s ok\n", t
			n_ok++
			if (t in why)
				printf "%s/%s\t%s\n", suite, t, why[t] > stale
			continue
		}
		extra = (t in detail) ? " [" detail[t] "]" : ""
		if ((t in why) && !(t in unexplained) &&
			(!(t in detail) || ((t in allowed_exit) && detail[t] == allowed_exit[t])))
		{
			printf "  %-40s FAILED (allowed: %s)\n", t, why[t]
			n_allowed++
			printf "%s", diff[t] > allowed
			continue
		}
		if (t in unexplained)
			extra = extra sprintf(" [%d changed line(s) outside the allowlist entry, first: %s]",
								  unexplained[t], substr(first_unexplained[t], 1, 100))
		printf "  %-40s FAILED (unexpected)%s\n", t, extra
		n_unexp++
		if (t in diff)
			printf "%s", diff[t] > unexpected
		else
			printf "=== %s/%s: failed with no diff in regression.diffs\n", suite, t > unexpected
	}
	printf "%d %d %d %d\n", n_ok, n_allowed, n_unexp, n_notrun > counts
}
