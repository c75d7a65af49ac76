/* mathfn.h — special functions shared by distributions, builtins and (later)
 * gradients.  Thread-safe (lgamma_r, no globals). */
#ifndef PPL_MATHFN_H
#define PPL_MATHFN_H

#include <stdint.h>

#define PPL_LOG_SQRT_2PI 0.91893853320467274178032973640562
#define PPL_LOG_PI 1.14472988584940017414342735135305
#define PPL_LOG2 0.69314718055994530941723212145818

double m_lgamma(double x);        /* log|Gamma(x)| */
double m_digamma(double x);
double m_trigamma(double x);
double m_lbeta(double a, double b);
double m_lchoose(double n, double k);
double m_log1p_exp(double x);     /* log(1 + e^x), stable */
double m_log1m_exp(double x);     /* log(1 - e^x), x < 0 */
double m_log_sum_exp2(double a, double b);
double m_log_diff_exp(double a, double b); /* log(e^a - e^b), a >= b */
double m_inv_logit(double x);
double m_logit(double p);
double m_log_inv_logit(double x);   /* log(inv_logit(x)), stable */
double m_log1m_inv_logit(double x); /* log(1 - inv_logit(x)), stable */
double m_std_normal_lcdf(double z); /* log Phi(z), accurate in both tails */
double m_std_normal_lccdf(double z);
double m_std_normal_qf(double p);   /* Phi^-1(p) */
/* Regularised incomplete gamma P(a, x) and beta I_x(a, b), and their logs. */
double m_gamma_p(double a, double x);
double m_gamma_q(double a, double x);
double m_inc_beta(double a, double b, double x);

/* Added by stdlib-cont (additive): logs of the regularised incomplete
 * functions, accurate where the value itself would underflow or round to 1.
 * m_gamma_pq_log gives log P(a, x) and log Q(a, x) together; m_inc_beta_log
 * gives log I_x(a, b) and log(1 - I_x(a, b)) and takes y = 1 - x separately
 * so a caller that knows 1 - x exactly (student_t) loses nothing. */
void m_gamma_pq_log(double a, double x, double *log_p, double *log_q);
void m_inc_beta_log(double a, double b, double x, double y, double *log_i, double *log_ic);
double m_log1pmx(double x); /* log(1 + x) - x, accurate near 0 */

/* Added by ad-dist: d/dz log Phi(z) = phi(z)/Phi(z) (the inverse Mills ratio
 * of -z), accurate in both tails; d/dz log(1 - Phi(z)) is -m_std_normal_dlcdf(-z). */
double m_std_normal_dlcdf(double z);
/* x / expm1(x) for x >= 0 (1 at 0), used by the gradients of log(1 - e^-t). */
double m_x_over_expm1(double x);

#endif
