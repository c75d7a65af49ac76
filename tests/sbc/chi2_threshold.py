# chi2_threshold.py — the chi-square quantile test_sbc.c compares against:
# SBC_BINS - 1 = 9 degrees of freedom, probability 0.999.  Needs mpmath.
import mpmath as mp

mp.mp.dps = 30
df, p = 9, mp.mpf("0.999")
q = mp.findroot(lambda x: mp.gammainc(df / 2, 0, x / 2, regularized=True) - p, df + 10)
print(mp.nstr(q, 17))
