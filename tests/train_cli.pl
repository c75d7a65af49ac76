#!/usr/bin/perl
# train_cli.pl — `ppl train`, `--load` and the engine amortized from the
# command line (issue 13, the guide form); TAP.
#
#   perl train_cli.pl PPL_BINARY
#
# The program is the conjugate per-datapoint toy: z[i] ~ normal(0, 1),
# x[i] ~ normal(z[i], 0.5), with a linear encoder z[i] ~ normal(a x[i] + b, s)
# in the guide.  Its exact posterior is z[i] | x[i] ~ normal(0.8 x[i],
# sqrt(0.2)), which the encoder family holds (a = 0.8, b = 0, s = 0.447), so
# a trained encoder must give it for data it never saw:
#  - train (minibatches of 20 of 200 points) then run --load on 26 new points
#    (whole plates: every z[i] drawn):
#    the draws' means and sds match the exact ones within 4 Monte Carlo
#    standard errors of the 4000 draws plus an allowance of 0.1 posterior sd
#    for the training (stochastic optimisation of a, b, s from 4000 steps);
#  - the same file and seed give the same draws, and the same draws as
#    `--engine svi --load-params` (the amortized engine is svi's chain);
#  - the selector picks amortized with --load (run and check say why), and
#    never without it; --engine amortized without --load is a usage error;
#  - a file of another program: exit 65; a truncated file: exit 65 with the
#    file named; a missing one: exit 66;
#  - train --amortize on data without the observed values, then run --load:
#    the npe form is picked and named;
#  - Ctrl-C during a long `ppl train`: exit 130, the file is written, it
#    loads, and `ppl train --load` resumes from it;
#  - run --verbose names how svi trains each plate (once over the minibatch,
#    or row by row and why), and training row by row (--plate-rows) gives
#    the same ELBO.
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use FindBin;
use lib $FindBin::Bin;
use TapCli;

my ($dir, $ppl) = tapcli_setup(shift @ARGV);

# The draws of a CSV (comment lines left out), and column means and sds.
sub column_stats {
  my @files = @_;
  my (%sum, %sq, $cnt, @names);
  $cnt = 0;
  for my $f (@files) {
    my @lines = grep { !/^#/ } split /\n/, slurp($f);
    @names = split /,/, shift @lines;
    for my $l (@lines) {
      my @v = split /,/, $l;
      $sum{$names[$_]} += $v[$_], $sq{$names[$_]} += $v[$_] ** 2 for 0 .. $#v;
      $cnt++;
    }
  }
  my %st;
  for my $k (keys %sum) {
    my $m = $sum{$k} / $cnt;
    $st{$k} = [$m, sqrt(($sq{$k} - $cnt * $m * $m) / ($cnt - 1))];
  }
  return (\%st, $cnt);
}

my $toy = <<'EOF';
data { int N; vector[N] x; }
model {
  plate (i in 1:N, batch = 20) {
    real z ~ normal(0, 1);
    x[i] ~ normal(z, 0.5);
  }
}
guide {
  param real a;                 // the encoder: z[i] | x[i] ~ normal(a x[i] + b, s)
  param real b;
  param real<lower=0> s = 1;
  plate (i in 1:N, batch = 20) {
    real z ~ normal(a * x[i] + b, s);
  }
}
EOF
spit("$dir/toy.ppl", $toy);
(my $other = $toy) =~ s/normal\(0, 1\)/normal(0, 2)/;
spit("$dir/other.ppl", $other);

# 200 training points from the model itself (Park and Miller's generator,
# exact in doubles; Box-Muller)
my $state = 12345;
sub unif01 { $state = ($state * 48271) % 2147483647; return $state / 2147483647; }
sub gauss { return sqrt(-2 * log(unif01())) * cos(2 * 3.141592653589793 * unif01()); }
my @x;
for (1 .. 200) { my $z = gauss(); push @x, $z + 0.5 * gauss(); }
spit("$dir/train.json", '{"N": 200, "x": [' . join(', ', map { sprintf '%.6f', $_ } @x) . "]}\n");
# new data: more points than a batch, so a subsampled plate would show
my @new = map { sprintf '%.1f', -2.5 + 0.2 * $_ } 0 .. 25;
spit("$dir/new.json", '{"N": 26, "x": [' . join(', ', @new) . "]}\n");

# ---- train, then draw for new data -----------------------------------------
my @train = ('train', 'toy.ppl', '--data', 'train.json', '--save', 'toy.params', '--iter', '4000',
             '--lr', '0.05', '--lr-schedule', 'cosine', '--seed', '3');
my ($s, $out, $err) = run_cmd(@train);
ok($s == 0 && -s "$dir/toy.params", "ppl train: exit 0, the file written (status $s)");
ok($out =~ /^trained: 4000 steps, 400\.00 epochs \(80000 examples\), ELBO -\d+(\.\d+)? in [\d.]+ s; saved toy\.params \(run it with --load toy\.params\)$/m,
   "the last line says what it did: $out");
ok($err =~ /^train: epoch 40\.00  step 400\/4000  ELBO -[\d.]+ \(smoothed\)  \d+ examples\/s$/m &&
   $err =~ /^train: epoch 400\.00  step 4000\/4000 /m,
   "progress lines with epoch, step, smoothed ELBO and examples/s");
($s, $out, $err) = run_cmd(@train[0 .. 4], 'quiet.params', '--iter', '10', '--no-progress', '--quiet');
ok($s == 0 && $out eq '' && $err eq '', "--no-progress --quiet: nothing printed");

($s, $out, $err) = run_cmd(@train[0 .. 4], 'ep.params', '--epochs', '7', '--no-progress');
ok($s == 0 && $out =~ /^trained: 70 steps, 7\.00 epochs \(1400 examples\)/m, "--epochs 7 of 200 in batches of 20: 70 steps");
($s, $out, $err) = run_cmd(@train[0 .. 4], 'ep.params', '--epochs', '7', '--iter', '5');
ok($s == 64 && $err =~ /^ppl: train: give --epochs or --iter, not both$/m, "--epochs with --iter: exit 64");
spit("$dir/noplate.ppl", "model { real mu ~ normal(0, 1); 1.5 ~ normal(mu, 1); }\n" .
     "guide { param real m; param real<lower=0> s = 1; real mu ~ normal(m, s); }\n");
($s, $out, $err) = run_cmd('train', 'noplate.ppl', '--save', 'np.params', '--iter', '200');
ok($s == 0 && $err =~ /^train: step 20\/200  ELBO -[\d.]+ \(smoothed\)  [\d.]+ steps\/s$/m &&
   $out =~ /^trained: 200 steps, ELBO -[\d.]+ in /m, "without a batched plate: steps/s, no epoch");
($s, $out, $err) = run_cmd('train', 'noplate.ppl', '--save', 'np.params', '--epochs', '3');
ok($s == 64 && $err =~ /^ppl: train: --epochs counts passes over a plate with a batch size/m,
   "--epochs without a batched plate: exit 64");

my @run = ('run', 'toy.ppl', '--load', 'toy.params', '--data', 'new.json', '--seed', '7');
($s, $out, $err) = run_cmd(@run, '--output', 'a.csv', '--quiet');
ok($s == 0, "run --load without --engine: exit 0 (status $s)");
ok($err =~ /^engine: amortized — --load toy\.params holds a guide trained for this program \(ppl train\): its encoders draw the latents for these data, no optimisation$/m,
   "the selector picks amortized and says why");
my ($st, $cnt) = column_stats(map { "$dir/a_$_.csv" } 1 .. 4);
my $sd = sqrt(0.2);
my ($worst_m, $worst_s) = (0, 0);
for my $j (1 .. 26) {
  my ($m, $s2) = @{$st->{"z.$j"}};
  $worst_m = abs($m - 0.8 * $new[$j - 1]) if abs($m - 0.8 * $new[$j - 1]) > $worst_m;
  $worst_s = abs($s2 - $sd) if abs($s2 - $sd) > $worst_s;
}
my $tol_m = 4 * $sd / sqrt($cnt) + 0.1 * $sd;
my $tol_s = 4 * $sd / sqrt(2 * $cnt) + 0.1 * $sd;
ok($cnt == 4000 && $worst_m < $tol_m,
   sprintf("new data: means within %.3f of the exact 0.8 x (worst %.4f)", $tol_m, $worst_m));
ok($worst_s < $tol_s, sprintf("new data: sds within %.3f of the exact 0.447 (worst %.4f)", $tol_s, $worst_s));

($s) = run_cmd(@run, '--engine', 'amortized', '--output', 'b.csv', '--quiet');
ok($s == 0 && rows("$dir/a_1.csv") eq rows("$dir/b_1.csv") && rows("$dir/a_4.csv") eq rows("$dir/b_4.csv"),
   "the same file and seed: the same draws");
ok(rows("$dir/a_1.csv") ne rows("$dir/a_2.csv"), "chains draw differently");
($s) = run_cmd(@run[0 .. 1], '--engine', 'svi', '--load-params', 'toy.params', @run[4 .. 7], '--chains', '1',
               '--output', 'c.csv', '--quiet');
ok($s == 0 && rows("$dir/a_1.csv") eq rows("$dir/c.csv"), "the same draws as svi --load-params");
($s, $out) = run_cmd(@run, '--chains', '1', '--psis-resample');
ok($s == 0 && $out =~ /PSIS k-hat/ && $out =~ /importance-resampled/, "--psis-resample: k-hat, resampled draws");

# an encoder trained 5 steps, on data far from the training set: k-hat says so
($s) = run_cmd(@train[0 .. 4], 'short.params', '--iter', '5', '--no-progress');
spit("$dir/far.json", '{"N": 26, "x": [' . join(', ', ('4.0') x 26) . "]}\n");
($s, $out) = run_cmd('run', 'toy.ppl', '--load', 'short.params', '--data', 'far.json');
my ($khat) = $out =~ /^PSIS k-hat of the draws against the posterior: ([\d.]+)/m;
ok($s == 0 && defined $khat && $khat > 0.7 && $out =~ /^variational family: amortized guide;/m &&
   $out =~ /advice: the trained encoders do not fit these data .* run --engine nuts/,
   "an untrained encoder on far data: k-hat " . ($khat // 'none') . " warns, and suggests nuts");

# ---- the selector ------------------------------------------------------------
($s, $out) = run_cmd('check', 'toy.ppl', '--data', 'new.json', '--load', 'toy.params');
ok($s == 0 && $out =~ /^engine: amortized — --load toy\.params holds a guide trained/m,
   "check --load: amortized, and why");
($s, $out) = run_cmd('check', 'toy.ppl', '--data', 'new.json');
ok($s == 0 && $out =~ /^engine: nuts/m && $out !~ /amortized/, "check without --load: never amortized");
($s, $out, $err) = run_cmd('run', 'toy.ppl', '--data', 'new.json', '--engine', 'amortized');
ok($s == 64 && $err =~ /^ppl: --engine amortized needs --load FILE/, "--engine amortized without --load: exit 64");
($s, $out, $err) = run_cmd(@run, '--engine', 'nuts');
ok($s == 64 && $err =~ /^ppl: option --load does not apply to engine 'nuts' \(it applies to amortized\)/,
   "--load with another engine: exit 64");

# ---- files refused -------------------------------------------------------------
($s, $out, $err) = run_cmd('run', 'other.ppl', '--load', 'toy.params', '--data', 'new.json');
ok($s == 65 && $err =~ /^--load: toy\.params: trained for another program \(model hash [0-9a-f]{16}, this program [0-9a-f]{16}\)$/m,
   "another program's file: exit 65 ($s: $err)");
($s, $out, $err) = run_cmd('check', 'other.ppl', '--load', 'toy.params', '--data', 'new.json');
ok($s == 65, "check refuses it too (exit 65)");
my $bytes = slurp("$dir/toy.params");
spit("$dir/trunc.params", substr($bytes, 0, 40));
($s, $out, $err) = run_cmd(@run[0 .. 1], '--load', 'trunc.params', @run[4 .. 5]);
ok($s == 65 && $err =~ /^--load: trunc\.params: header length \d+ runs past the end of the file \(40 bytes\)$/m,
   "a file cut in its header: exit 65 ($err)");
spit("$dir/trunc2.params", substr($bytes, 0, length($bytes) - 8));
($s, $out, $err) = run_cmd(@run[0 .. 1], '--load', 'trunc2.params', @run[4 .. 5]);
ok($s == 65 && $err =~ /^--load: trunc2\.params: tensor '[\w.]+': data_offsets .* are outside the \d+ bytes of data$/m,
   "a file cut in its data: exit 65 ($err)");
($s, $out, $err) = run_cmd(@run[0 .. 1], '--load', 'missing.params', @run[4 .. 5]);
ok($s == 66 && $err =~ /^--load: cannot read missing\.params: No such file or directory$/m, "a missing file: exit 66");
($s, $out, $err) = run_cmd('train', 'toy.ppl', '--data', 'train.json', '--save', 'toy.ppl');
ok($s == 64 && $err =~ /^ppl: params file 'toy\.ppl' is the run's model file 'toy\.ppl': refusing to overwrite it$/m,
   "train --save onto the model file: refused");
($s, $out, $err) = run_cmd('train', 'toy.ppl', '--data', 'train.json');
ok($s == 64 && $err =~ /^ppl: train needs --save FILE/, "train without --save: exit 64");
($s, $out, $err) = run_cmd('train', 'toy.ppl', '--data', 'train.json', '--save', 'x.params', '--chains', '2');
ok($s == 64 && $err =~ /^ppl: train: --chains does not apply/, "train --chains: exit 64");
spit("$dir/noguide.ppl", "model { real mu ~ normal(0, 1); }\n");
($s, $out, $err) = run_cmd('train', 'noguide.ppl', '--save', 'x.params');
ok($s == 64 && $err =~ /^ppl: train: the program has latents but no guide block/, "train without a guide: exit 64");

# a guide whose params follow the data's size is fitted, not amortized
spit("$dir/local.ppl", "data { int N; vector[N] x; }\nmodel { vector[N] z ~ normal(0, 1); x ~ normal(z, 0.5); }\n" .
     "guide { param vector[N] m = rep_vector(0, N); vector[N] z ~ normal(m, 1); }\n");
($s) = run_cmd('train', 'local.ppl', '--data', 'train.json', '--save', 'local.params', '--iter', '10');
($s, $out, $err) = run_cmd('run', 'local.ppl', '--data', 'new.json', '--load', 'local.params');
ok($s == 65 && $err =~ /^--load: local\.params: tensor 'guide\.m' has shape \[200\], the program's value has shape \[26\]: a param whose size follows the data is fitted to the data it was trained on, not amortized/m,
   "per-datapoint params on new data of another size: exit 65, and why ($s)");

# ---- --amortize: whole-program amortization (npe), the data without y ----------
spit("$dir/nm.ppl", "data { int N; vector[N] y; }\nmodel {\n  real mu ~ normal(0, 1);\n" .
                    "  plate (i in 1:N) { y[i] ~ normal(mu, 1); }\n}\n");
spit("$dir/shape.json", "{\"N\": 10}\n");
spit("$dir/obs.json", "{\"N\": 10, \"y\": [0.5, 1.2, 0.3, 0.9, 1.5, 0.2, 0.8, 1.1, 0.4, 0.7]}\n");
($s, $out, $err) = run_cmd('train', 'nm.ppl', '--amortize', '--data', 'shape.json', '--save', 'nm.params',
                           '--simulations', '500', '--epochs', '3', '--lr', '0.002');
ok($s == 0 && $out =~ /^trained: 500 simulations, 3 epochs, held-out loss [-\d.e+]+ in [\d.]+ s; saved nm\.params/m &&
   $err =~ /^train: epoch 3\/3 /m, "train --amortize (data without the observed y): trained, epochs shown ($s)");
($s, $out, $err) = run_cmd('run', 'nm.ppl', '--load', 'nm.params', '--data', 'obs.json', '--chains', '1');
ok($s == 0 && $err =~ /^engine: amortized — --load nm\.params holds a conditional flow trained for this program/m &&
   $out =~ /^mu\s+-?\d/m, "run --load of an npe file: amortized, and why");
($s, $out, $err) = run_cmd('run', 'toy.ppl', '--amortize', '--data', 'new.json');
ok($s == 64 && $err =~ /^ppl: --amortize is an option of train/, "--amortize outside train: exit 64");

# ---- Ctrl-C saves what it has --------------------------------------------------
my $pid = start("$dir/int.out", "$dir/int.err", @train[0 .. 4], 'int.params', '--iter',
                '100000000', '--no-progress');
sleep 2;
kill 'INT', $pid;
my $ws = wait_for($pid, 60);
ok(defined $ws && ($ws & 127) == 0 && ($ws >> 8) == 130, "SIGINT during train: exit 130 (status " . ($ws // 'none') . ")");
if (!defined $ws) { kill 'KILL', $pid; waitpid($pid, 0); }
ok(slurp("$dir/int.out") =~ /^interrupted: \d+ steps, .* saved what it had to int\.params/m, "it says it saved what it had");
($s, $out) = run_cmd(@run[0 .. 1], '--load', 'int.params', @run[4 .. 5], '--chains', '1');
ok($s == 0 && $out =~ /^z\[1\]\s+-/m, "the interrupted file loads and draws");
my ($gp) = $out =~ /^chain 1: guide params: (.*)$/m;
($s, $out, $err) = run_cmd(@train[0 .. 4], 'resumed.params', '--load', 'int.params', '--iter', '1',
                           '--lr', '1e-9');
ok($s == 0 && $out =~ /^trained: 1 steps, 0\.10 epochs/m, "train --load int.params resumes from it ($s)");
($s, $out) = run_cmd(@run[0 .. 1], '--load', 'resumed.params', @run[4 .. 5], '--chains', '1');
# Adam moves each param by at most ~30 lr in a step, yet where Ctrl-C lands
# decides the values, so the printed 6 digits may flip in the last place:
# same names, each number within one unit of its 6th digit
my ($gp2) = $out =~ /^chain 1: guide params: (.*)$/m;
my $num = qr/-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?/i;
my ($shape1, $shape2) = map { (my $t = $_ // '') =~ s/$num/#/g; $t } $gp, $gp2;
my @a = defined $gp ? $gp =~ /($num)/g : ();
my @b = defined $gp2 ? $gp2 =~ /($num)/g : ();
my $close = @a && @a == @b && $shape1 eq $shape2;
for my $i (0 .. $#a) { $close &&= abs($a[$i] - $b[$i]) <= 1.5e-5 * abs($a[$i]) + 1e-7 }
ok($close, "one step of lr 1e-9 from the interrupted params keeps them (" . ($gp // 'none') .
           " -> " . ($gp2 // 'none') . ")");

# ---- the vectorised plate (ir/plate_vec.h): run --verbose says how svi trains each plate ----
($s, $out, $err) = run_cmd('run', 'toy.ppl', '--data', 'train.json', '--engine', 'svi', '--iter', '5',
                           '--chains', '1', '--draws', '1', '--verbose', '--quiet', '--output', 'v.csv');
my @once = $err =~ /^svi: plate i \(toy\.ppl:\d+:3\): one pass over the minibatch$/mg;
ok($s == 0 && @once == 2, "run --verbose: both plates of toy.ppl run over the minibatch at once");
spit("$dir/rows.ppl", "data { int N; vector[N] x; }\nmodel {\n  plate (i in 1:N, batch = 20) {\n" .
     "    real z ~ normal(0, 1);\n    if (x[i] > 0) x[i] ~ normal(z, 0.5);\n  }\n}\n" .
     "guide {\n  param real a;\n  plate (i in 1:N, batch = 20) {\n    real z ~ normal(a * x[i], 1);\n" .
     "  }\n}\n");
($s, $out, $err) = run_cmd('run', 'rows.ppl', '--data', 'train.json', '--engine', 'svi', '--iter', '5',
                           '--chains', '1', '--draws', '1', '--verbose', '--quiet', '--output', 'v.csv');
ok($s == 0 && $err =~ /^svi: plate i \(rows\.ppl:3:3\): row by row: an if in the plate's body \(rows\.ppl:5:5\)$/m &&
   $err =~ /^svi: plate i \(rows\.ppl:10:3\): row by row: plate i at rows\.ppl:3:3 runs row by row$/m,
   "run --verbose: a plate with an if keeps the row loop, and so does the guide's of its name");
my @tr = ('train', 'toy.ppl', '--data', 'train.json', '--iter', '300', '--seed', '5', '--no-progress');
my ($s1, $o1) = run_cmd(@tr, '--save', 'vec.params');
my ($s2, $o2) = run_cmd(@tr, '--save', 'rows.params', '--plate-rows');
my ($e1) = $o1 =~ /ELBO (-[\d.]+) in/;
my ($e2) = $o2 =~ /ELBO (-[\d.]+) in/;
ok($s1 == 0 && $s2 == 0 && defined $e1 && defined $e2 && $e1 eq $e2,
   "train by the minibatch pass and row by row (--plate-rows): the same ELBO (" . ($e1 // '?') .
   ", " . ($e2 // '?') . ")");

exit tap_done();
