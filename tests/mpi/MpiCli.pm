# MpiCli.pm — what the mpi suite's perl tests share (after TapCli's
# tapcli_setup): the skip line where MPI is missing, Open MPI's environment
# for root and for more ranks than cores, `mpi R ARGS`, and the logistic
# program over 37 rows that the row-split tests run.
#
#   use lib $FindBin::Bin; use MpiCli;
#   mpi_setup($ppl, shift @ARGV);          # prints the skip line and exits without MPI
#   my ($status, $out, $err) = mpi(2, 'run', 'm.ppl');
package MpiCli;

use strict;
use warnings;
use Exporter qw(import);
use TapCli;

our @EXPORT = qw(mpi_setup mpi mpi_exec spit_logit);

my ($mpirun, $ppl);

sub mpi_setup {
  my $has_mpi;
  ($ppl, $has_mpi) = @_;
  $mpirun = `sh -c 'command -v mpirun' 2>/dev/null`;
  chomp $mpirun;
  if (!$has_mpi || !$mpirun) {
    print "1..0 # SKIP ", (!$has_mpi ? "this build has no MPI (meson setup -Dmpi=enabled, libopenmpi-dev)"
                                      : "mpirun not found (apt-get install openmpi-bin)"), "\n";
    exit 0;
  }
  # as root Open MPI wants to be told; two cores carry four ranks
  $ENV{OMPI_ALLOW_RUN_AS_ROOT} = 1;
  $ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} = 1;
  $ENV{OMPI_MCA_rmaps_base_oversubscribe} = 1;
  $ENV{OMPI_MCA_btl_vader_single_copy_mechanism} = 'none'; # containers without CMA
}

# mpirun -n R ppl ARGS: (exit status, stdout, stderr), killed after 300 s
sub mpi { my ($r, @args) = @_; return mpi_exec($r, $ppl, @args); }

# mpirun -n R PROGRAM ARGS, the same way
sub mpi_exec {
  my ($r, $program, @args) = @_;
  my $cmd = join ' ', 'timeout', '300', $mpirun, '--oversubscribe', '-n', $r, $program,
    map { "'$_'" } @args;
  system("$cmd >mpi_out.txt 2>mpi_err.txt");
  my $st = $? >> 8;
  return ($st, slurp('mpi_out.txt'), slurp('mpi_err.txt'));
}

# logit.ppl and logit.json: a logistic regression over 37 rows in a for loop
sub spit_logit {
  spit('logit.ppl', <<'PPL');
data { int N; vector[N] x; int<lower=0, upper=1> y[N]; }
model {
  real a ~ normal(0, 2);
  real b ~ normal(0, 2);
  for (n in 1:N) y[n] ~ bernoulli_logit(a + b * x[n]);
}
PPL
  my @x = map { sprintf '%.3f', sin($_) * 2 } 1 .. 37;
  my @y = map { ($_ * 7) % 3 == 0 ? 1 : 0 } 1 .. 37;
  spit('logit.json', '{"N": 37, "x": [' . join(',', @x) . '], "y": [' . join(',', @y) . ']}');
}

1;
