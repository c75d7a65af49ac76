#!/usr/bin/perl
# csv_tools.pl — the commands over CSV draws: `ppl summary` (the table, JSON
# and warnings of the run that wrote the files, and of CmdStan's files) and
# `ppl generate` (standalone generated quantities); TAP.
#
#   perl csv_tools.pl PPL_BINARY TESTS_DIR
#
# TESTS_DIR/csv holds CmdStan files written by rstan 2.21 (sample_file, with
# its warmup rows): cmdstan_normal_{1,2}.csv of the model in cmdstan_normal.stan.
use strict;
use warnings;
use Cwd qw(abs_path);
use FindBin;
use lib $FindBin::Bin;
use TapCli;

my $tests = abs_path($ARGV[1] // '') or die "usage: csv_tools.pl PPL TESTS_DIR\n";
tapcli_setup($ARGV[0]);
# What a file cannot tell: how the run computed (backend) and the engines'
# chain remarks after the table.
sub without_run_only {
  my $t = shift;
  $t =~ s/^backend: .*\n//m;
  $t =~ s/\n(chain \d+: .*\n)+\z/\n/;
  $t =~ s/\n\n\z/\n/;
  return $t;
}

spit('normal.ppl', "data { int N; vector[N] y; }\n" .
     "model { real mu ~ normal(0, 10); real<lower=0> sigma ~ exponential(1);\n" .
     "  vector[2] z ~ normal(0, 1); y ~ normal(mu, sigma); }\n" .
     "generated { real mu2 = mu * 2; }\n");
spit('normal.json', '{"N": 8, "y": [1.2, 0.4, 2.1, 1.7, 0.9, 1.5, 1.1, 0.3]}');

# ---- ppl summary repeats the run ------------------------------------------
for my $case (['nuts', '--warmup', '300'], ['mh', '--warmup', '300'], ['is'], ['smc', '--particles', '200']) {
  my ($eng, @more) = @$case;
  my ($st, $run) = run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--engine', $eng, '--chains', '2',
                       '--draws', '200', @more, '--sig-figs', '17', '--output', "$eng.csv",
                       '--summary', "$eng-run.json");
  my ($st2, $sum, $err) = run_cmd('summary', "${eng}_1.csv", "${eng}_2.csv", '--json', "$eng-sum.json");
  ok($st == 0 && $st2 == 0 && $run =~ /^mu\s/m, "$eng: run and summary succeed ($st, $st2) $err");
  ok(without_run_only($run) eq $sum, "$eng: the summary of the files is the run's table");
  my ($rj, $sj) = (slurp("$eng-run.json"), slurp("$eng-sum.json"));
  $rj =~ s/"backend": (".*?"|null)/"backend": null/;
  $rj =~ s/\n  "notes": \[.*?\n  \],//s; # the engines' chain remarks: not in the files either
  ok($rj eq $sj && length($sj) > 100, "$eng: and its JSON is the run's (less the backend and notes)");
  if ($eng eq 'smc') {
    ok($sum =~ /^log evidence: -?\d+\.\d+ ± \d/m, "smc: the log evidence and its SE from the files' trailers");
  }
  if ($eng eq 'nuts') {
    # the same files with CmdStan's saved warmup rows before "Adaptation terminated"
    my $csv = slurp('nuts_1.csv');
    my ($first) = $csv =~ /^(-?\d[^\n]*)\n/m;
    $csv =~ s/save_warmup = 0/save_warmup = 1/;
    $csv =~ s/^# Adaptation terminated/join('', map { "$first\n" } 1 .. 150) . "# Adaptation terminated"/me;
    spit('warm_1.csv', $csv);
    my (undef, $w) = run_cmd('summary', 'warm_1.csv', 'nuts_2.csv');
    ok($w eq $sum, "nuts: warmup rows saved before '# Adaptation terminated' are left out");
  }
}

# the default six digits: the same table up to the rounding of the draws
{
  my ($st, $run) = run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--engine', 'mh', '--chains', '2',
                       '--draws', '300', '--output', 'six.csv');
  my ($st2, $sum) = run_cmd('summary', 'six_1.csv', 'six_2.csv');
  my @a = map { /^(\S+)\s+(\S+)/ ? "$1 $2" : () } grep { /^(mu|sigma|z\[\d\]|mu2)\s/ } split /\n/, $run;
  my @b = map { /^(\S+)\s+(\S+)/ ? "$1 $2" : () } grep { /^(mu|sigma|z\[\d\]|mu2)\s/ } split /\n/, $sum;
  ok($st2 == 0 && @a == 5 && "@a" eq "@b", "six significant digits: the same means (@b)");
}

# an interrupted run: chain 2 stopped after 150 of 200 draws (no trailer);
# the summary keeps the fewest, as the run did, and says so
{
  run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--engine', 'mh', '--chains', '2', '--draws', '200',
      '--sig-figs', '17', '--output', 'cut.csv', '--quiet');
  my @l = split /\n/, slurp('cut_2.csv');
  my @data = grep { $l[$_] =~ /^-?\d/ } 0 .. $#l;
  spit('cut_2.csv', join("\n", @l[0 .. $data[149]]) . "\n");
  my ($st, $out) = run_cmd('summary', 'cut_1.csv', 'cut_2.csv');
  ok($st == 0 && $out =~ /^2 chains, 150 draws each after \d+ warmup iterations: 300 draws in total\ninterrupted after 150 of 200 draws$/m,
     'an interrupted run: the fewest draws, "interrupted after 150 of 200 draws"');
  # the same files made to look like two runs of different lengths
  (my $t = slurp('cut_2.csv')) =~ s/num_samples = 200/num_samples = 150/;
  spit('cut_2.csv', $t);
  ($st, undef, my $err) = run_cmd('summary', 'cut_1.csv', 'cut_2.csv');
  ok($st == 65 && $err =~ /^cut_1\.csv has 200 draws but cut_2\.csv has 150: the files must be chains of one run$/m,
     "files of different runs with different draw counts ($st) $err");
}

# --quiet: no table, the warnings on stderr (2 chains of 20 mh draws: low ESS)
{
  my (undef, undef, $rerr) = run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--engine', 'mh',
                                 '--chains', '2', '--draws', '20', '--warmup', '20', '--quiet',
                                 '--sig-figs', '17', '--output', 'few.csv');
  my ($st, $out, $err) = run_cmd('summary', 'few_1.csv', 'few_2.csv', '--quiet');
  $rerr =~ s/^engine: .*\n//m;
  ok($st == 0 && $out eq '' && $err =~ /^Warning \(ess\)/m && $err eq $rerr,
     "--quiet: no table; the run's warnings on stderr");
}

# ---- CmdStan's own files --------------------------------------------------
{
  my @files = map { "$tests/csv/cmdstan_normal_$_.csv" } 1, 2;
  my ($st, $out, $err) = run_cmd('summary', @files, '--json', 'cmdstan.json');
  ok($st == 0, "CmdStan files: exit 0 $err");
  ok($out =~ /^engine: nuts$/m && $out =~ /^2 chains, 200 draws each after 200 warmup iterations: 400 draws in total$/m,
     'CmdStan files: nuts, 200 draws a chain after 200 warmup (the saved warmup rows left out)');
  # the mean of mu over the rows after "# Adaptation terminated", computed here
  my ($sum, $cnt) = (0, 0);
  for my $f (@files) {
    my ($after, $col) = (0, -1);
    for (split /\n/, slurp($f)) {
      if (/^lp__/) { my @h = split /,/; ($col) = grep { $h[$_] eq 'mu' } 0 .. $#h; next; }
      $after = 1 if /Adaptation terminated/;
      next if /^#/ || !$after;
      $sum += (split /,/)[$col];
      $cnt++;
    }
  }
  my $mean = sprintf('%.3g', $sum / $cnt);
  ok($cnt == 400 && $out =~ /^mu\s+\Q$mean\E\s/m, "CmdStan files: mean of mu $mean over the 400 kept rows");
  ok($out =~ /^z\[2\]\s/m && $out =~ /^mu2\s/m && $out =~ /^treedepth__\s/m, 'CmdStan files: z.2 as z[2], the generated quantity, the sampler columns');
  ok(slurp('cmdstan.json') =~ /"engine": "nuts"/, 'CmdStan files: --json');
}

# ---- ppl generate ---------------------------------------------------------
spit('gen.ppl', "data { int N; vector[N] y; }\n" .
     "model { real mu ~ normal(0, 10); real<lower=0> sigma ~ exponential(1);\n" .
     "  vector[2] z ~ normal(0, 1); y ~ normal(mu, sigma); }\n" .
     "generated { real twice = mu * 2; vector[N] y_rep;\n" .
     "  for (n in 1:N) y_rep[n] = normal_rng(mu, sigma); real zsum = z[1] + z[2]; }\n");
# Rows of a CSV as hashes by column name.
sub row_hashes {
  my @lines = grep { !/^#/ } split /\n/, slurp(shift);
  my @h = split /,/, shift @lines;
  return (\@h, [map { my @v = split /,/; my %r; @r{@h} = @v; \%r } @lines]);
}
for my $jit ([], ['--no-jit']) {
  my $tag = @$jit ? 'interpreted run' : 'compiled run';
  run_cmd('run', 'normal.ppl', '--data', 'normal.json', '--chains', '2', '--draws', '100', '--warmup', '200',
      @$jit, '--output', 'post.csv', '--quiet');
  my ($st, undef, $err) = run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'post_1.csv',
                              'post_2.csv', '--output', 'gq.csv', '--seed', '5');
  ok($st == 0 && -f 'gq_1.csv' && -f 'gq_2.csv', "$tag: generate writes gq_1.csv, gq_2.csv ($st) $err");
  my ($h, $rows) = row_hashes('gq_1.csv');
  my ($ph, $prows) = row_hashes('post_1.csv');
  my @yrep = grep { /^y_rep\.\d$/ } @$h;
  ok(@$rows == 100 && @yrep == 8 && (grep { $_ eq 'lp__' } @$h) && (grep { $_ eq 'treedepth__' } @$h),
     "$tag: 100 rows with the draw's columns and y_rep.1 .. y_rep.8");
  my ($exact, $same, $varies) = (0, 0, 0);
  my %seen;
  for my $i (0 .. $#$rows) {
    my ($r, $p) = ($rows->[$i], $prows->[$i]);
    $exact++ if $r->{twice} == 2 * $r->{mu} && $r->{zsum} == $r->{'z.1'} + $r->{'z.2'};
    $same++ if $r->{mu} == $p->{mu} && $r->{sigma} == $p->{sigma} && $r->{lp__} == $p->{lp__};
    $seen{$r->{'y_rep.1'}}++;
  }
  ok($exact == 100, "$tag: twice == mu * 2 and zsum == z.1 + z.2 exactly in every row ($exact)");
  ok($same == 100, "$tag: the draws' values copied unchanged ($same)");
  ok(keys(%seen) == 100, "$tag: y_rep differs from draw to draw");
  my ($sd, $mean, $n) = (0, 0, 0);
  for my $r (@$rows) { my $e = $r->{'y_rep.3'} - $r->{mu}; $mean += $e / $r->{sigma}; $sd += ($e / $r->{sigma}) ** 2; $n++ }
  $mean /= $n; $sd = sqrt($sd / $n - $mean ** 2);
  ok(abs($mean) < 0.35 && $sd > 0.75 && $sd < 1.3, "$tag: (y_rep - mu) / sigma ~ normal(0, 1): mean $mean, sd $sd");
}
{
  run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'post_1.csv', '--output', 'a.csv', '--seed', '9');
  run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'post_1.csv', '--output', 'b.csv', '--seed', '9');
  my ($st, $out) = run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'post_1.csv', '--seed', '10');
  ok(slurp('a.csv') eq slurp('b.csv') && slurp('a.csv') =~ /y_rep/, 'the same seed gives the same file');
  (my $x = slurp('a.csv')) =~ s/seed = \d+//;
  (my $y = $out) =~ s/seed = \d+//;
  ok($st == 0 && $x ne $y && length($y) > 1000, 'another seed, other y_rep; no --output: stdout');
  # CmdStan's files (rstan's, warmup rows left out) replay too
  ($st, undef, my $err) = run_cmd('generate', 'gen.ppl', '--data', "$tests/csv/cmdstan_normal.json",
                              '--draws', "$tests/csv/cmdstan_normal_1.csv", '--output', 'cs.csv');
  my ($h, $rows) = row_hashes('cs.csv');
  ok($st == 0 && @$rows == 200 && (grep { $_->{twice} == 2 * $_->{mu} } @$rows) == 200,
     "CmdStan's draws: 200 rows, twice == 2 mu ($st) $err");
}
# a derived variable of the model that the draws lack is computed and written
{
  spit('derived.ppl', "data { int N; vector[N] y; }\n" .
       "model { real mu ~ normal(0, 10); real<lower=0> sigma ~ exponential(1);\n" .
       "  vector[2] z ~ normal(0, 1); real m3 = mu * 3; y ~ normal(mu, sigma); }\n" .
       "generated { real m4 = m3 + mu; }\n");
  my ($st, undef, $err) = run_cmd('generate', 'derived.ppl', '--data', 'normal.json', '--draws', 'post_1.csv',
                              '--output', 'der.csv');
  my ($h, $rows) = row_hashes('der.csv');
  my $good = grep { $_->{m3} == 3 * $_->{mu} && $_->{m4} == $_->{m3} + $_->{mu} } @$rows;
  ok($st == 0 && $h->[-2] eq 'm3' && $h->[-1] eq 'm4' && $good == 100,
     "a derived variable not in the draws: m3 == 3 mu, then m4 == m3 + mu in every row ($good) $err");
}
# latents declared in a loop are set from their columns by address (h[2] is h.2)
{
  spit('loop.ppl', "data { int T; }\nmodel { real mu ~ normal(0, 1);\n" .
       "  for (t in 2:T) { real h ~ normal(mu, 1); } }\n");
  spit('loopgen.ppl', "data { int T; }\nmodel { real mu ~ normal(0, 1); real hs = 0;\n" .
       "  for (t in 2:T) { real h ~ normal(mu, 1); hs += h; } }\ngenerated { real g = hs; }\n");
  spit('t4.json', '{"T": 4}');
  run_cmd('run', 'loop.ppl', '--data', 't4.json', '--engine', 'mh', '--chains', '1', '--draws', '50',
      '--output', 'loop.csv', '--quiet');
  my ($st, undef, $err) = run_cmd('generate', 'loopgen.ppl', '--data', 't4.json', '--draws', 'loop.csv',
                              '--output', 'loopgq.csv');
  my ($h, $rows) = row_hashes('loopgq.csv');
  my $good = grep { abs($_->{g} - ($_->{'h.2'} + $_->{'h.3'} + $_->{'h.4'})) <= 1e-9 * (1 + abs($_->{g})) } @$rows;
  ok($st == 0 && $good == 50, "loop latents set from h.2, h.3, h.4: g == their sum in every row ($good) $err");
}
# errors
{
  spit('nogen.ppl', "model { real mu ~ normal(0, 1); }\n");
  my ($st, undef, $err) = run_cmd('generate', 'nogen.ppl', '--draws', 'post_1.csv');
  ok($st == 64 && $err =~ /^ppl: nogen\.ppl has no generated block/m, "no generated block ($st) $err");
  spit('other.ppl', "model { real mu ~ normal(0, 10); real tau ~ normal(0, 1); }\ngenerated { real t = tau; }\n");
  ($st, undef, $err) = run_cmd('generate', 'other.ppl', '--draws', 'post_1.csv');
  ok($st == 65 && $err =~ /^post_1\.csv: no column 'tau' for latent 'tau' of the model$/m, "a latent missing from the file ($st) $err");
  my $csv = slurp('post_1.csv');
  my @l = split /\n/, $csv;
  my ($hl) = grep { $l[$_] =~ /^lp__/ } 0 .. $#l;
  my @h = split /,/, $l[$hl];
  my ($sc) = grep { $h[$_] eq 'sigma' } 0 .. $#h;
  my @data = grep { $_ > $hl && $l[$_] !~ /^#/ } 0 .. $#l;
  my $at = $data[2]; # the third draw
  my @v = split /,/, $l[$at];
  $v[$sc] = '-0.5';
  $l[$at] = join(',', @v);
  spit('neg.csv', join("\n", @l) . "\n");
  my $ln = $at + 1;
  ($st, undef, $err) = run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'neg.csv');
  ok($st == 65 && $err =~ /^neg\.csv:$ln: the draw's value of latent 'sigma' is outside its distribution's support/m,
     "a value outside the support names the row ($st) $err");
  ($st, undef, $err) = run_cmd('generate', 'gen.ppl', '--data', 'normal.json', '--draws', 'post_1.csv', 'post_2.csv');
  ok($st == 64 && $err =~ /give --output/, "several files to stdout: usage ($st)");
  ($st, undef, $err) = run_cmd('generate', 'gen.ppl', '--data', 'normal.json');
  ok($st == 64 && $err =~ /needs --draws/, "no --draws: usage ($st)");
}

# ---- errors ---------------------------------------------------------------
{
  my ($st, undef, $err) = run_cmd('summary', 'nope.csv');
  ok($st == 66 && $err =~ /^cannot read nope\.csv: No such file/m, "missing file: exit 66, named ($st) $err");
  spit('empty.csv', '');
  ($st, undef, $err) = run_cmd('summary', 'empty.csv');
  ok($st == 66 && $err =~ /^empty\.csv: the file is empty/m, "empty file: exit 66 ($st) $err");
  spit('comments.csv', "# model = x_model\n");
  ($st, undef, $err) = run_cmd('summary', 'comments.csv');
  ok($st == 65 && $err =~ /^comments\.csv: no header row/m, "only comments: exit 65 ($st) $err");
  spit('bad.csv', "# c\nlp__,mu,sigma\n-1,0.5,1\n-2,abc,1\n");
  ($st, undef, $err) = run_cmd('summary', 'bad.csv');
  ok($st == 65 && $err =~ /^bad\.csv:4:4: 'abc' is not a number \(column 'mu'\)$/m, "malformed value: file:line:col ($st) $err");
  spit('short.csv', "lp__,mu,sigma\n-1,0.5,1\n-2,1\n");
  ($st, undef, $err) = run_cmd('summary', 'short.csv');
  ok($st == 65 && $err =~ /^short\.csv:3:1: the row has 2 values, the header has 3 columns$/m, "short row ($st) $err");
  spit('long.csv', "lp__,mu,sigma\n-1,0.5,1,7\n");
  ($st, undef, $err) = run_cmd('summary', 'long.csv');
  ok($st == 65 && $err =~ /^long\.csv:2:1: the row has 4 values, the header has 3 columns$/m, "long row ($st) $err");
  spit('other.csv', "lp__,mu,tau\n-1,0.5,1\n-2,0.6,1\n");
  spit('good.csv', "lp__,mu,sigma\n-1,0.5,1\n-2,0.6,1\n");
  ($st, undef, $err) = run_cmd('summary', 'good.csv', 'other.csv');
  ok($st == 65 && $err =~ /^other\.csv: its columns differ from good\.csv's \(column 3: 'tau' vs 'sigma'\)/m,
     "files whose columns differ ($st) $err");
  ($st, undef, $err) = run_cmd('summary');
  ok($st == 64 && $err =~ /summary needs CSV files/, "no files: usage ($st)");
  ($st, undef, $err) = run_cmd('summary', 'good.csv', '--json');
  ok($st == 64 && $err =~ /option --json needs a value/, "--json without a file: usage ($st)");
}

exit tap_done();
