/* transform.h — maps between a constrained value and unconstrained reals, with
 * the log absolute Jacobian determinant of the constraining map (Stan's
 * transforms: log / logit for bounds, stick-breaking for simplex, cumulative exp
 * for ordered, Cholesky-based for corr and cov matrices, normalisation for unit
 * vectors), with their reverse-mode derivatives.  Used by every engine that
 * moves in unconstrained space (MH, NUTS/HMC, ADVI) and by compiled code. */
#ifndef PPL_TRANSFORM_H
#define PPL_TRANSFORM_H

#include "../core/types.h"
#include "ad.h"

/* Number of unconstrained reals for a constrained value of n scalars with the
 * given kind: e.g. simplex of K -> K-1, chol_corr KxK -> K(K-1)/2, cov KxK ->
 * K(K+1)/2 (n = K for vectors, n = K*K for matrices, K = side). */
int tf_free_size(ConKind con, int n);

/* x (n constrained scalars, column-major for matrices) -> u (tf_free_size
 * reals). Returns false if x is not in the constraint set. */
bool tf_unconstrain(ConKind con, double lo, double hi, int n, const double *x, double *u);
/* u -> x, returning log|det J| of the map u -> x (added to the log density). */
double tf_constrain(ConKind con, double lo, double hi, int n, const double *u, double *x);
/* tf_constrain recorded on tape t: u (and the scalar bounds lo, hi) carry
 * nodes, x receives the constrained values with their nodes, and the returned
 * log|det J| has its own node.  Same values as tf_constrain. */
AdNum tf_constrain_ad(Tape *t, ConKind con, AdNum lo, AdNum hi, int n, const AdNum *u,
                      AdNum *x);

/* The kinds that map a whole vector or matrix at once (simplex, ordered,
 * positive_ordered, unit_vector, cholesky_factor_corr, cov_matrix), as opposed
 * to elementwise bounds. */
bool tf_structured(ConKind con);
/* Reverse of tf_constrain for a structured kind: given u, the x that
 * tf_constrain gave for it, the adjoints xbar of x (n) and ljbar of log|J|,
 * ADD d(xbar.x + ljbar log|J|)/du into ubar (tf_free_size(con, n) reals).
 * CON_NONE is the identity (ubar += xbar); elementwise bounds add nothing.
 * The one derivative of these maps: the interpreter's tape records it as one
 * block (tf_constrain_ad) and compiled code calls it directly. */
void tf_constrain_vjp(ConKind con, int n, const double *u, const double *x, const double *xbar,
                      double ljbar, double *ubar);

#endif
