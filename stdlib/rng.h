/* rng.h — the random number generator every engine and *_rng function uses.
 *
 * xoshiro256** seeded through splitmix64 from (seed, stream), so chain k of a
 * run with seed s is rng_seed(&r, s, k): independent streams, reproducible bit
 * for bit, no global state.  The state is a plain struct that engines embed.
 */
#ifndef PPL_RNG_H
#define PPL_RNG_H

#include <stdint.h>

typedef struct Rng {
  uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);             /* in (0, 1), never 0 or 1 */
double rng_normal(Rng *r);              /* standard normal */
double rng_exponential(Rng *r);         /* rate 1 */
double rng_gamma(Rng *r, double shape); /* rate 1, any shape > 0 */
double rng_beta(Rng *r, double a, double b);
/* Counts; -1 when there is no meaningful draw (invalid parameters, lambda > 4e18). */
int64_t rng_poisson(Rng *r, double lambda);
int64_t rng_binomial(Rng *r, int64_t n, double p);
int64_t rng_int(Rng *r, int64_t lo, int64_t hi); /* uniform on {lo..hi} */

#endif
