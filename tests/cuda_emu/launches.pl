#!/usr/bin/perl
# Rewrites the kernel launches of one CUDA source for the host compiler:
#   kernel<<<grid, block, shmem, stream>>>(args)  ->  sc_emu_launch(sc_emu_cfg(grid, block, shmem, stream), kernel, args)
# and keeps every line where it was (a #line names the original file), so that compiler
# messages and debuggers point into src/cuda. Usage: launches.pl IN.cu OUT.cpp
use strict;
use warnings;

my ($in, $out) = @ARGV;
die "usage: launches.pl IN.cu OUT.cpp\n" unless defined $out;
open(my $fh, '<', $in) or die "launches.pl: cannot read $in: $!\n";
my $src = do { local $/; <$fh> };
close($fh);

my $count = ($src =~ s/(\w+(?:<[\w:, ]+>)?)\s*<<<(.*?)>>>\s*\(/sc_emu_launch(sc_emu_cfg($2), $1, /gs);
# A launch the pattern missed would reach the compiler as a syntax error far from its cause.
die "launches.pl: $in: a launch was not rewritten\n" if $src =~ /<<<|>>>/;

open(my $oh, '>', $out) or die "launches.pl: cannot write $out: $!\n";
print $oh "#line 1 \"$in\"\n", $src;
close($oh) or die "launches.pl: cannot write $out: $!\n";
printf "launches.pl: %s: %d launches\n", $in, $count || 0 if $ENV{VERBOSE};
