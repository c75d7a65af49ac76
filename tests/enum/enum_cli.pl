#!/usr/bin/perl
# enum_cli.pl — discrete latents summed out by enumeration as a user of the
# `ppl` command sees them (issue 16): the `enumerated:` section of `ppl check`
# for the natural programs of tests/enum and for programs that cannot be
# enumerated (with the reason, and the engine falling back), and `ppl run`'s
# engine line, discrete columns (mh's names) and --enum-marginals columns; TAP.
#
#   perl enum_cli.pl PPL_BINARY TESTS_ENUM_DIR
use strict;
use warnings;
use File::Temp qw(tempdir);
use Cwd qw(abs_path);

my $ppl = abs_path(shift @ARGV) or die "usage: enum_cli.pl PPL DIR\n";
my $src = abs_path(shift @ARGV) or die "usage: enum_cli.pl PPL DIR\n";
my $tmp = tempdir(CLEANUP => 1);
my $n = 0;
sub ok($$) {
  my ($cond, $name) = @_;
  $n++;
  print(($cond ? "ok" : "not ok") . " $n - $name\n");
  return $cond;
}
sub slurp { my $f = shift; open my $h, '<', $f or return ''; local $/; my $t = <$h>; close $h; return $t; }
sub ppl {
  system("$ppl " . join(' ', map { "'$_'" } @_) . " >$tmp/out.txt 2>$tmp/err.txt");
  return ($? >> 8, slurp("$tmp/out.txt"), slurp("$tmp/err.txt"));
}
# A CSV's header and rows (comments left out): (names, [row arrays]).
sub csv {
  my @lines = grep { !/^#/ && /\S/ } split /\n/, slurp(shift);
  my @names = split /,/, shift @lines;
  return (\@names, [map { [split /,/] } @lines]);
}
# The lines of the `enumerated:` section (up to the next unindented line).
sub section {
  my $out = shift;
  my ($sec) = $out =~ /^enumerated:\n((?:  .*\n)*)/m;
  return $sec;
}

# --- ppl check on the natural programs: every discrete latent enumerated,
#     with the size of its factor, and nuts chosen
my @natural = (
  ['changepoint', 'coal', 's', qr/\b112\b/],
  ['changepoint_late', 'coal', 's', qr/\b112\b/],
  ['mix', 'mix3', 'z', qr/\b3\b/],
  ['mix', 'mix5', 'z', qr/\b5\b/],
  ['hmm_loop', 'hmm', 'z', qr/\b(3|9)\b/],
  ['hmm_array', 'hmm', 'zt', qr/\b(3|9)\b/],
  ['nested', 'nested', 'a', qr/^3$/],
  ['nested', 'nested', 'b', qr/^3 x 3 = 9 \(summed out inside the sum over 'a'\)$/],
  ['nested', 'nested', 'd', qr/^3$/],
  ['nested', 'nested', 'c', qr/^2 x 2 = 4 \(summed out inside the sum over 'z'\)$/],
  ['population', 'population', 'N', qr/^33$/],
);
for my $c (@natural) {
  my ($prog, $data, $latent, $size) = @$c;
  my ($st, $out, $err) = ppl('check', "$src/$prog.ppl", '--data', "$src/$data.data.json");
  my $sec = section($out);
  ok($st == 0 && defined $sec, "check $prog ($data): an enumerated: section") or print "# $out$err";
  my ($line) = ($sec // '') =~ /^  \Q$latent\E\s+(.*)$/m;
  ok(defined $line && $line =~ /^enumerated\b.*factor (.*)$/ && $1 =~ $size,
     "check $prog ($data): $latent enumerated with its factor's size") or print "# " . ($line // 'no line') . "\n";
  ok($out =~ /^engine: nuts .*summed out by enumeration/m, "check $prog ($data): engine nuts, summed out")
    or print "# " . join("\n# ", grep { /^engine/ } split /\n/, $out) . "\n";
}

# --- programs that cannot be enumerated: the reason, and today's engine
my @not = (
  ['running_sum', 'z', qr/\S/],
  ['unbounded', 'k', qr/\S/],
  ['too_big', 's', qr/\S/],
  ['nested_poisson', 'a', qr/the discrete latent 'k' \(line 9\) in its segment is not enumerated/],
  ['nested_poisson', 'k', qr/its family poisson has no finite support/],
);
for my $c (@not) {
  my ($prog, $latent, $why) = @$c;
  my ($st, $out, $err) = ppl('check', "$src/not/$prog.ppl", '--data', "$src/not/$prog.data.json");
  my $sec = section($out);
  my ($line) = ($sec // '') =~ /^  \Q$latent\E\s+(.*)$/m;
  ok(defined $line && $line =~ /^not enumerated: (.*)$/ && $1 =~ $why,
     "check not/$prog: $latent not enumerated, with the reason") or print "# " . ($line // 'no line') . "\n# $out";
  my ($engine) = $out =~ /^(engine: .*)$/m;
  ok(defined $engine && $engine =~ /^engine: mh / && $engine !~ /are summed out by enumeration/,
     "check not/$prog: the engine falls back to mh") or print "# " . ($engine // 'no engine line') . "\n";
}
# the limit: the engine line says why it falls back, with the factor's size
{
  my ($st, $out) = ppl('check', "$src/not/too_big.ppl", '--data', "$src/not/too_big.data.json");
  ok($out =~ /^engine: mh .*not summed out.*100000 terms.*limit/m,
     'check not/too_big: the engine line gives the factor size 100000 and the limit')
    or print "# $out";
}

# the elimination order of nested sums: inner ones first
{
  my ($st, $out) = ppl('check', "$src/nested.ppl", '--data', "$src/nested.data.json");
  ok((section($out) // '') =~ /^  elimination order: c, z, d, b, a$/m,
     'check nested: the elimination order, inner sums first') or print "# $out";
}
# a bounded int: its draws lie in its bounds, its pr_ columns cover them
{
  my ($st, $out, $err) = ppl('run', "$src/population.ppl", '--data', "$src/population.data.json",
                             '--chains', '1', '--seed', '5', '--warmup', '100', '--draws', '100',
                             '--enum-marginals', '--output', "$tmp/pop.csv");
  my ($names, $rows) = csv("$tmp/pop.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my ($bad, $np) = (0, scalar grep { /^pr_N\.\d+$/ } @$names);
  for my $r (@$rows) {
    my $v = $r->[$col{N} // 0];
    $bad++ unless defined $col{N} && $v =~ /^\d+$/ && $v >= 8 && $v <= 40;
    my $sum = 0;
    $sum += $r->[$col{"pr_N.$_"} // 0] for 1 .. $np;
    $bad++ unless abs($sum - 1) < 1e-5;
  }
  ok($st == 0 && $out =~ /^engine: nuts .*summed out by enumeration/m && @$rows == 100 && $np == 33
       && !$bad, "run population: N drawn in 8..40, 33 pr_N columns summing to 1")
    or print "# $err $bad problems, $np pr_N columns\n";
}

# variable elimination: a chain of five with nothing continuous left, whose
# draws are exact and independent: the drawn values' frequencies within 4
# standard errors of the brute-force posterior marginals (243 configurations),
# and the pr_ columns equal to them (the CSV's 6 digits)
{
  my ($st, $out, $err) = ppl('run', "$src/chain5.ppl", '--data', "$src/chain5.data.json",
                             '--chains', '1', '--seed', '11', '--draws', '4000',
                             '--enum-marginals', '--output', "$tmp/chain5.csv");
  my @x = (0.7, -1.3, 2.2, 0.4, 1.9);
  my @mu = (-1.5, 0.5, 2.0);
  my @w = (0.2, 0.3, 0.5);
  my @v = ([0.6, 0.2, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]);
  my $ln = sub { my ($y, $m) = @_; -0.5 * ($y - $m)**2 };   # normal(m, 1) up to a constant
  my (@p, $tot);
  $p[$_] = [(0) x 3] for 0 .. 4;
  for my $k (0 .. 242) {
    my @z = map { int($k / 3**$_) % 3 } 0 .. 4;
    my $l = log($w[$z[0]]);
    $l += log($v[$z[$_ - 1]][$z[$_]]) for 1 .. 4;
    $l += $ln->($x[$_], $mu[$z[$_]]) for 0 .. 3;
    $l += $ln->($x[4], $mu[$z[4]] + 0.5 * $mu[$z[3]]);
    my $q = exp($l);
    $tot += $q;
    $p[$_][$z[$_]] += $q for 0 .. 4;
  }
  my ($names, $rows) = csv("$tmp/chain5.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my ($bad, $nd) = (0, scalar @$rows);
  my @lat = qw(a b c d e);
  for my $i (0 .. 4) {
    for my $k (0 .. 2) {
      my $pk = $p[$i][$k] / $tot;
      my $f = grep { $_->[$col{$lat[$i]} // 0] == $k + 1 } @$rows;
      $bad++, print "# $lat[$i] = ", $k + 1, ": frequency ", $f / $nd, ", exact $pk\n"
        if abs($f / $nd - $pk) > 4 * sqrt($pk * (1 - $pk) / $nd) + 1e-9;
      my $pc = $col{"pr_$lat[$i]." . ($k + 1)};
      $bad++, print "# pr_$lat[$i].", $k + 1, " missing or not $pk\n"
        if !defined $pc || grep { abs($_->[$pc] - $pk) > 1e-5 } @$rows;
    }
  }
  ok($st == 0 && $nd == 4000 && !$bad,
     "run chain5: draws and pr_ columns of a chain of five match its brute-force posterior")
    or print "# $err\n";
}

# a factorial HMM (two chains in one loop, over their product state) with
# nothing continuous left: the drawn pairs (z1[t], z2[t])' frequencies within 4
# standard errors of the brute-force posterior over the 4^4 = 256 paths, and
# ppl check's factor of the product state
{
  my ($st, $out, $err) = ppl('check', "$src/fhmm_small.ppl", '--data', "$src/fhmm_small.data.json");
  ok($st == 0 && $out =~ /^  z1  enumerated, factor 4 x 4 = 16 \(a factorial chain with 'z2': forward algorithm over its 2 x 2 product states\)$/m
       && $out =~ /^  z2  enumerated, factor 4 x 4 = 16 \(a factorial chain with 'z1'/m,
     'check fhmm_small: both chains enumerated over the 2 x 2 product state') or print "# $out";
  ($st, $out, $err) = ppl('run', "$src/fhmm_small.ppl", '--data', "$src/fhmm_small.data.json",
                          '--chains', '1', '--seed', '13', '--draws', '4000',
                          '--output', "$tmp/fhmm.csv");
  my @y = (0.3, 2.1, -0.4, 1.2);
  my @mu1 = (-1, 1);
  my @mu2 = (0, 1.5);
  my @g1 = ([0.7, 0.3], [0.2, 0.8]);
  my @g2 = ([0.6, 0.4], [0.3, 0.7]);
  my (@p, $tot);
  $p[$_] = [(0) x 4] for 0 .. 3;
  for my $k (0 .. 255) {
    my @s = map { int($k / 4**$_) % 4 } 0 .. 3;   # s = 2 (z1 - 1) + (z2 - 1)
    my ($a, $b, $l) = (0, 1, 0);                  # the states before the loop: 1, 2
    for my $t (0 .. 3) {
      my ($u, $v) = (int($s[$t] / 2), $s[$t] % 2);
      $l += log($g1[$a][$u]) + log($g2[$b][$v]) - 0.5 * ($y[$t] - $mu1[$u] - $mu2[$v])**2;
      ($a, $b) = ($u, $v);
    }
    my $q = exp($l);
    $tot += $q;
    $p[$_][$s[$_]] += $q for 0 .. 3;
  }
  my ($names, $rows) = csv("$tmp/fhmm.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my ($bad, $nd) = (0, scalar @$rows);
  for my $t (1 .. 4) {
    for my $s (0 .. 3) {
      my $pk = $p[$t - 1][$s] / $tot;
      my ($u, $v) = (int($s / 2) + 1, $s % 2 + 1);
      my $f = grep { ($_->[$col{"z1.$t"} // 0] // -1) == $u && ($_->[$col{"z2.$t"} // 0] // -1) == $v } @$rows;
      $bad++, print "# (z1[$t], z2[$t]) = ($u, $v): frequency ", $f / ($nd || 1), ", exact $pk\n"
        if !$nd || abs($f / $nd - $pk) > 4 * sqrt($pk * (1 - $pk) / $nd) + 1e-9;
    }
  }
  ok($st == 0 && $out =~ /^engine: prior .*summed out by enumeration \(largest factor 4 x 4\)/m
       && $nd == 4000 && !$bad,
     "run fhmm_small: the pairs (z1[t], z2[t]) drawn match the brute-force posterior")
    or print "# $err\n";
}

# a chain inside a regime's sum, with structural zeros in its transitions:
# the run succeeds (a -inf log probability is a value never drawn), every
# drawn path starts at 1 or 2 and moves up by at most one state a step, and
# each draw's pr_r and pr_z.t columns sum to 1
{
  my ($st, $out, $err) = ppl('run', "$src/hmm_left.ppl", '--data', "$src/hmm_left.data.json",
                             '--chains', '1', '--seed', '5', '--warmup', '200', '--draws', '300',
                             '--enum-marginals', '--output', "$tmp/left.csv");
  my ($names, $rows) = csv("$tmp/left.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my $bad = 0;
  for my $r (@$rows) {
    my @z = map { $r->[$col{"z.$_"} // 0] } 1 .. 8;
    $bad++ unless defined $col{'z.8'} && defined $col{r} && $r->[$col{r}] =~ /^[01]$/;
    $bad++ unless $z[0] == 1 || $z[0] == 2;
    for my $t (1 .. 7) { $bad++ unless $z[$t] >= $z[$t - 1] && $z[$t] <= $z[$t - 1] + 1; }
    my $s = 0;
    $s += $r->[$col{"pr_r.$_"} // 0] for 1 .. 2;
    $bad++ unless abs($s - 1) < 1e-5;
    for my $t (1 .. 8) {
      $s = 0;
      $s += $r->[$col{"pr_z.$t.$_"} // 0] for 1 .. 3;
      $bad++ unless abs($s - 1) < 1e-5;
    }
  }
  ok($st == 0 && $out =~ /summed out by enumeration/ && @$rows == 300 && !$bad,
     "run hmm_left: a chain in a regime's sum, structural zeros never drawn, pr_ columns sum to 1")
    or print "# $err $bad problems\n";
  ($st, $out) = ppl('check', "$src/hmm_left.ppl", '--data', "$src/hmm_left.data.json");
  ok((section($out) // '') =~ /^  z  enumerated, factor 2 x 3 x 3 = 18 \(summed out inside the sum over 'r'\)$/m,
     'check hmm_left: the chain summed inside r, factor 2 x 3 x 3') or print "# $out";
}

# pr_ columns of latents in a loop in a loop (rows by both indices) and under
# an if (NaN where the branch does not run): one per value, summing to 1, and
# the drawn values' frequencies within 4 standard errors of the columns' means
# (given each draw, z is drawn with those probabilities)
for my $c (['rows_items', [map { my $i = $_; map { "$i.$_" } 1 .. 3 } 1 .. 2], []],
           ['branch', [1, 3, 4], [2]]) {
  my ($prog, $idx, $off) = @$c;
  my ($st, $out, $err) = ppl('run', "$src/$prog.ppl", '--data', "$src/$prog.data.json",
                             '--chains', '1', '--seed', '9', '--warmup', '300', '--draws', '1000',
                             '--enum-marginals', '--output', "$tmp/$prog.csv");
  my ($names, $rows) = csv("$tmp/$prog.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my $bad = 0;
  for my $i (@$idx) {
    my ($f, $m, $v) = (0, 0, 0);
    for my $r (@$rows) {
      my ($p0, $p1) = map { $col{"pr_z.$i.$_"} } 1 .. 2;
      my $z = $col{"z.$i"};
      if (!defined $p0 || !defined $p1 || !defined $z) { $bad++; last; }
      $bad++ unless abs($r->[$p0] + $r->[$p1] - 1) < 1e-5;
      $f += $r->[$z] == 1;
      $m += $r->[$p1];
      $v += $r->[$p1] * (1 - $r->[$p1]);
    }
    $bad++, print "# z.$i: frequency $f against the probabilities' sum $m\n"
      if abs($f - $m) > 4 * sqrt($v) + 1e-9;
  }
  for my $i (@$off) {
    $bad++ unless defined $col{"pr_z.$i.1"} && !grep { $_->[$col{"pr_z.$i.1"}] !~ /nan/i } @$rows;
  }
  ok($st == 0 && @$rows == 1000 && !$bad,
     "run $prog --enum-marginals: pr_z columns for " . scalar(@$idx) . " latents, sums 1, draws agree")
    or print "# $err $bad problems\n";
}

# --- ppl run: the engine line, the columns mh writes, --enum-marginals
sub columns_of_mh {
  my ($prog, $data) = @_;
  ppl('run', "$src/$prog.ppl", '--data', "$src/$data.data.json", '--engine', 'mh', '--chains', '1',
      '--warmup', '20', '--draws', '20', '--seed', '3', '--output', "$tmp/mh.csv");
  my ($names) = csv("$tmp/mh.csv");
  return grep { !/__$/ } @$names;
}
for my $c (['changepoint', 'coal', 's', 112], ['mix', 'mix4', 'z', 4], ['hmm_loop', 'hmm', 'z', 3]) {
  my ($prog, $data, $z, $k) = @$c;
  my @mh = columns_of_mh($prog, $data);
  my @scalars = grep { /^\Q$z\E(\.\d+)?$/ } @mh;
  my @args = ('run', "$src/$prog.ppl", '--data', "$src/$data.data.json", '--chains', '1',
              '--seed', '7');
  # without --enum-marginals: the engine line, mh's columns, draws in the
  # support (what this run checks needs no long chain: 50 draws)
  my ($st, $out, $err) = ppl(@args, '--warmup', '50', '--draws', '50', '--output', "$tmp/nuts.csv");
  ok($st == 0 && $out =~ /^engine: nuts .*summed out by enumeration/m, "run $prog: nuts, summed out")
    or do { print "# $err"; next };
  my ($names, $rows) = csv("$tmp/nuts.csv");
  my %col;
  @col{@$names} = (0 .. $#$names);
  my @missing = grep { !exists $col{$_} } @mh;
  ok(!@missing && @$rows == 50 && !grep({ /^pr_/ } @$names),
     "run $prog: mh's columns (" . scalar(@mh) . ") all present, no pr_ columns, 50 rows")
    or print "# missing: @missing\n";
  my $bad = 0;
  for my $r (@$rows) {
    for my $s (@scalars) {
      my $v = $r->[$col{$s}] // '';
      $bad++ unless $v =~ /^\d+$/ && $v >= 1 && $v <= $k;
    }
  }
  ok(@scalars && !$bad, "run $prog: " . scalar(@scalars) . " discrete columns, every draw in 1..$k")
    or print "# $bad draws outside the support\n";
  # --enum-marginals: one pr_ column per value, probabilities summing to 1 per
  # scalar and row, the drawn value of positive probability
  push @args, '--warmup', '200', '--draws', '200';
  ($st, $out, $err) = ppl(@args, '--enum-marginals', '--output', "$tmp/marg.csv");
  ok($st == 0, "run $prog --enum-marginals") or do { print "# $err"; next };
  ($names, $rows) = csv("$tmp/marg.csv");
  %col = ();
  @col{@$names} = (0 .. $#$names);
  my $nprob = 0;
  $bad = 0;
  for my $r (@$rows) {
    for my $s (@scalars) {
      my $v = $r->[$col{$s}];
      my $sum = 0;
      for my $j (1 .. $k) {
        my $i = $col{"pr_$s.$j"};
        if (!defined $i) { $bad++; next; }
        my $p = $r->[$i];
        $nprob++;
        $bad++ unless $p >= 0 && $p <= 1;
        $sum += $p;
      }
      $bad++ unless abs($sum - 1) < 1e-5;   # the CSV has 6 significant digits
      my $pv = defined $v && defined $col{"pr_$s.$v"} ? $r->[$col{"pr_$s.$v"}] : 0;
      $bad++ unless $pv > 0;
    }
  }
  ok(@scalars && !$bad && $nprob == 200 * $k * @scalars,
     "run $prog --enum-marginals: pr_$z columns sum to 1, drawn values have probability > 0")
    or print "# $bad problems, $nprob probabilities\n";
  if ($prog eq 'changepoint' && !$bad) {
    # the coal-mining change: the posterior of s peaks at 1890-1892 (s = 40..42)
    my @m = (0) x ($k + 1);
    for my $r (@$rows) { $m[$_] += $r->[$col{"pr_s.$_"}] / @$rows for 1 .. $k; }
    my ($mode) = sort { $m[$b] <=> $m[$a] } 1 .. $k;
    ok($mode >= 39 && $mode <= 43, "run changepoint: the posterior of s peaks at year " . (1850 + $mode));
  }
}

# --engine mh on a natural program runs it as before: no pr_ columns
{
  my ($st, $out) = ppl('run', "$src/mix.ppl", '--data', "$src/mix3.data.json", '--engine', 'mh',
                       '--chains', '1', '--warmup', '20', '--draws', '20', '--output', "$tmp/mh.csv");
  my ($names) = csv("$tmp/mh.csv");
  ok($st == 0 && $out =~ /^engine: mh /m && !grep({ /^pr_/ } @$names) && grep({ $_ eq 'z.1' } @$names),
     'run mix --engine mh: the program as written, z columns, no pr_ columns');
}
# a program that is not enumerable runs with today's choice
{
  my ($st, $out, $err) = ppl('run', "$src/not/running_sum.ppl", '--data', "$src/not/running_sum.data.json",
                             '--chains', '1', '--warmup', '50', '--draws', '50');
  ok($st == 0 && $out =~ /^engine: mh /m && $out !~ /are summed out by enumeration/,
     'run not/running_sum: falls back to mh')
    or print "# $err";
}
print "1..$n\n";
