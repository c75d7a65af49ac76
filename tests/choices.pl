#!/usr/bin/perl
# choices.pl — the choices file (every random choice of each draw by
# address, JSON Lines beside each chain's CSV), the summary's table of a
# dynamic program's choices, --include / --exclude of latents in loops, and a
# loop latent whose columns would clash with an output's; TAP.
#
#   perl choices.pl PPL_BINARY
use strict;
use warnings;
use JSON::PP;
use FindBin;
use lib $FindBin::Bin;
use TapCli;

tapcli_setup(shift @ARGV);
# A CSV's header and rows (comments left out): (names, [row arrays]).
sub csv {
  my @lines = grep { !/^#/ && /\S/ } split /\n/, slurp(shift);
  my @names = split /,/, shift @lines;
  return (\@names, [map { [split /,/] } @lines]);
}
# A JSON Lines file's objects; undef if a line is not a JSON object.
sub jsonl {
  my @objs;
  for my $line (split /\n/, slurp(shift)) {
    my $o = eval { JSON::PP->new->decode($line) };
    return undef unless ref $o eq 'HASH';
    push @objs, $o;
  }
  return \@objs;
}

# K ~ poisson(3) and K x's: the addresses change from draw to draw.
spit('dyn.ppl', <<'EOF');
model {
  int K ~ poisson(3);
  for (k in 1:K) {
    real x ~ normal(0, 1);
  }
}
EOF

# Every line a JSON object whose K is its number of x's, x[1] .. x[K], in the
# CSV's row order (K as in the CSV's row); returns the objects.
sub check_dynamic {
  my ($csvf, $jf, $what) = @_;
  my ($names, $rows) = csv($csvf);
  my $objs = jsonl($jf);
  ok(defined $objs, "$what: every line of $jf is a JSON object") or return [];
  ok(@$objs == @$rows && @$rows > 0, "$what: $jf has one line a CSV row (" . scalar(@$objs) . " vs " . scalar(@$rows) . ")");
  my ($kcol) = grep { $names->[$_] eq 'K' } 0 .. $#$names;
  my $bad = 0;
  for my $i (0 .. $#$objs) {
    my $o = $objs->[$i];
    my @x = sort grep { /^x\[/ } keys %$o;
    my @want = sort map { "x[$_]" } 1 .. ($o->{K} // -1);
    $bad++ unless defined $o->{K} && "@x" eq "@want" && keys(%$o) == @x + 1;
    $bad++ unless defined $kcol && $rows->[$i] && $rows->[$i][$kcol] == $o->{K};
    $bad++ if grep { ref $o->{$_} || $o->{$_} !~ /^-?[0-9.e+-]+$/ } @x;
  }
  ok($bad == 0, "$what: each draw's K equals its number of x's (x[1]..x[K]) and the CSV row's K ($bad bad)");
  return $objs;
}

{
  my ($rc, $out, $err) = run_cmd('run', 'dyn.ppl', '--engine', 'mh', '--chains', '2', '--draws', '150',
                             '--seed', '3', '--output', 'mh.csv');
  ok($rc == 0, 'mh runs the dynamic program') or print "# $err";
  my @all;
  for my $c (1, 2) {
    push @all, @{check_dynamic("mh_$c.csv", "mh_${c}_choices.jsonl", "mh chain $c")};
  }
  ok(slurp('mh_1.csv') =~ /^# latents in loops, branches and functions have no column: .*; every draw's choices are in mh_1_choices\.jsonl$/m,
     "mh: the CSV's comment points to the choices file");
  my %addr;
  my ($have, $nx, $sum) = (0, 0, 0);
  for my $o (@all) {
    $addr{$_} = 1 for keys %$o;
    my @x = grep { /^x\[/ } keys %$o;
    next unless @x;
    $have++;
    $nx += @x;
    $sum += $o->{$_} for @x;
  }
  my $na = keys %addr;
  ok($out =~ /^choices: $na addresses in mh_1_choices\.jsonl \.\.\. mh_2_choices\.jsonl/m,
     "mh: the summary counts the $na addresses of the files");
  my $line = sprintf('%-24s %8.1f%% %9.3g', 'x', 100 * $have / @all, $nx / $have);
  ok(index($out, $line) >= 0, "mh: the summary's row of x: its share of draws and addresses per draw ($line)")
    or print "# $out";
  my ($mean) = $out =~ /^x +\S+% +\S+ +(\S+)$/m;
  ok(defined $mean && abs($mean - $sum / $nx) <= 0.005 * (1 + abs($sum / $nx)),
     "mh: the summary's mean of x is the mean of the files' x's (" . ($mean // 'none') . " vs " . $sum / $nx . ")");
}

for my $e ('smc', 'is', 'pgibbs', 'prior') {
  my ($rc, $out, $err) = run_cmd('run', 'dyn.ppl', '--engine', $e, '--chains', '1', '--draws', '60',
                             '--output', "$e.csv");
  ok($rc == 0, "$e runs the dynamic program") or print "# $err";
  check_dynamic("$e.csv", "${e}_choices.jsonl", $e);
  ok($out =~ /^choices: \d+ addresses in ${e}_choices\.jsonl/m && $out =~ /^x +\d+\.\d% /m,
     "$e: the summary's lines on the choices");
}

{ # no output file: the table all the same
  my ($rc, $out, $err) = run_cmd('run', 'dyn.ppl', '--engine', 'smc', '--chains', '1', '--draws', '40');
  ok($rc == 0 && $out =~ /^choices: \d+ addresses \(every random choice of each draw; a run with an output FILE\.csv writes them to FILE_choices\.jsonl\)$/m
       && $out =~ /^x +\d+\.\d% /m,
     'no output file: the summary says where a run would write them, and has the table') or print "# $out";
}

{ # warmup rows too, in the CSV's order
  my ($rc, $out, $err) = run_cmd('run', 'dyn.ppl', '--engine', 'mh', '--chains', '1', '--draws', '20',
                             '--warmup', '30', '--save-warmup', '--output', 'w.csv');
  ok($rc == 0, '--save-warmup runs') or print "# $err";
  my $objs = check_dynamic('w.csv', 'w_choices.jsonl', '--save-warmup');
  ok(@$objs == 50, '--save-warmup: the warmup draws are lines too (' . scalar(@$objs) . ')');
}

# A fixed structure: latents in a loop have columns; --choices adds the file.
spit('ss.ppl', <<'EOF');
data { int T = 4; }
model {
  real mu ~ normal(0, 1);
  real g = mu * 2;
  for (t in 2:T) {
    real h ~ normal(mu, 1);
  }
}
EOF
{
  my ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '10',
                             '--output', 'f.csv');
  ok($rc == 0 && !-e 'f_choices.jsonl' && $out !~ /^choices:/m,
     'fixed structure: no choices file unless asked');
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '10',
                          '--output', 'f.csv', '--choices');
  my $objs = jsonl('f_choices.jsonl');
  my ($names, $rows) = csv('f.csv');
  my %col = map { $names->[$_] => $_ } 0 .. $#$names;
  my $same = $objs && @$objs == 10 && @$rows == 10;
  for my $i (0 .. 9) {
    last unless $same;
    my $o = $objs->[$i];
    $same = join(',', sort keys %$o) eq 'h[2],h[3],h[4],mu'
            && abs($o->{mu} - $rows->[$i][$col{mu}]) < 1e-9 && abs($o->{'h[3]'} - $rows->[$i][$col{'h.3'}]) < 1e-9;
  }
  ok($rc == 0 && $same, '--choices: the latents (not g) by address, the CSV rows\' values') or print "# $err";
  ok($out =~ /^choices: 4 addresses in f_choices\.jsonl/m && $out !~ /^x +\d/m,
     '--choices: the summary counts them; no table for a fixed structure');
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                          '--output', '-', '--choices');
  ok($rc == 64 && $err =~ /--choices writes each chain's choices beside its CSV: give --output FILE\.csv/,
     '--choices needs an output file') or print "# $rc $err";

  # --include / --exclude name a latent in a loop by its name
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                          '--output', 'i.csv', '--include', 'h');
  ok($rc == 0 && join(',', @{(csv('i.csv'))[0]}) eq 'lp__,accept_stat__,h.2,h.3,h.4',
     '--include h: every h.t column, nothing else') or print "# $err";
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                          '--output', 'i.csv', '--include', 'mu, h');
  ok($rc == 0 && join(',', @{(csv('i.csv'))[0]}) eq 'lp__,accept_stat__,mu,h.2,h.3,h.4',
     '--include mu,h');
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                          '--output', 'i.csv', '--exclude', 'h');
  ok($rc == 0 && join(',', @{(csv('i.csv'))[0]}) eq 'lp__,accept_stat__,mu,g' && $out !~ /^h\[/m,
     '--exclude h: no h column nor summary row');
  ($rc, $out, $err) = run_cmd('run', 'ss.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                          '--include', 'hh');
  ok($rc == 64 && $err =~ /no output 'hh' \(its outputs: mu, g; latents in loops, branches and functions: h\)/,
     '--include of an unknown name lists the latents in loops') or print "# $err";
}

# A latent in a function, named by its name or function/name.
spit('fn.ppl', <<'EOF');
real f(real m) {
  real x ~ normal(m, 1);
  return x;
}
model {
  real mu ~ normal(0, 1);
  real a = f(mu);
  real b = f(a);
}
EOF
for my $case (['--include', 'x', 'lp__,accept_stat__,f/x,f/x#2'], ['--include', 'f/x', 'lp__,accept_stat__,f/x,f/x#2'],
              ['--exclude', 'f/x', 'lp__,accept_stat__,mu,a,b']) {
  my ($rc, $out, $err) = run_cmd('run', 'fn.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                             '--output', 'fn.csv', $case->[0], $case->[1]);
  ok($rc == 0 && join(',', @{(csv('fn.csv'))[0]}) eq $case->[2], "$case->[0] $case->[1]: a function's latent")
    or print "# $err";
}

# A loop latent named as a later top-level vector: both would write h.1.
spit('clash.ppl', <<'EOF');
model {
  for (t in 1:2) {
    real h ~ normal(0, 1);
  }
  vector[2] h ~ normal(0, 1);
}
EOF
{
  my ($rc, $out, $err) = run_cmd('run', 'clash.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3',
                             '--output', 'c.csv');
  ok($rc != 0 && $err =~ /the latent at address 'h\[1\]' and an output both have column 'h\.1': rename/,
     'a loop latent whose column an output has is refused') or print "# $rc $err";
}
# Shadowing a top-level name inside the loop is refused by the checker.
spit('shadow.ppl', <<'EOF');
model {
  real h ~ normal(0, 1);
  for (t in 1:3) {
    real h ~ normal(h, 1);
  }
}
EOF
{
  my ($rc, $out, $err) = run_cmd('run', 'shadow.ppl', '--engine', 'mh', '--chains', '1', '--draws', '3');
  ok($rc == 65 && $err =~ /^shadow\.ppl:4:10: 'h' is already declared at line 2/m,
     'a loop latent cannot shadow a top-level variable') or print "# $rc $err";
}

exit tap_done();
