#!/usr/bin/perl
# layering.pl SOURCE_ROOT — the folders stand on each other in one order, and
# no folder's code reaches up (TAP).  Each #include of another folder's file
# must name a lower floor, and no meson.build compiles another folder's file.
# A change that makes, say, stdlib/ include ir/ fails here, not in review.
use strict;
use warnings;

my $root = shift or die "usage: layering.pl SOURCE_ROOT\n";
# lowest first; folders on one floor may not use each other
my @floors = (['core'], ['parser', 'stdlib'], ['lang'], ['ir'], ['inference'], ['api']);
my %rank;
for my $i (0 .. $#floors) { $rank{$_} = $i for @{$floors[$i]} }

my ($n, $failed) = (0, 0);
sub check {
  my ($ok, $what) = @_;
  $n++;
  print(($ok ? "ok" : "not ok") . " $n - $what\n");
  $failed++ unless $ok;
}

for my $dir (sort keys %rank) {
  my @files = (glob("$root/$dir/*.[chyl]"), glob("$root/$dir/*/*.[ch]"));
  my @bad;
  for my $f (@files) {
    open my $fh, '<', $f or die "$f: $!";
    while (my $line = <$fh>) {
      next unless $line =~ /^\s*#\s*include\s+"(?:\.\.\/)*([a-z_]+)\/[^"]+"/;
      my $to = $1;
      next unless exists $rank{$to} && $to ne $dir;
      push @bad, "$f:$.: $dir includes $to/" if $rank{$to} >= $rank{$dir};
    }
    close $fh;
  }
  check(!@bad, "$dir/ includes only lower floors");
  print "#   $_\n" for @bad;

  my $mb = "$root/$dir/meson.build";
  if (-f $mb) {
    open my $fh, '<', $mb or die "$mb: $!";
    my @up = grep { /'\.\.\// } <$fh>;
    close $fh;
    check(!@up, "$dir/meson.build compiles only its own files");
    print "#   $_" for @up;
  }
}
print "1..$n\n";
exit($failed ? 1 : 0);
