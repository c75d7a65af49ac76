/* vi_flow.h — what the Real NVP family (inference/vi_flow.c) offers beyond
 * inference/vi.h's interface: its inverse, for log q at a theta the flow did
 * not draw (guides, tests).  vi_flow_new itself is declared in vi.h.
 */
#ifndef PPL_VI_FLOW_H
#define PPL_VI_FLOW_H

#include "vi.h"

/* eps = T^-1(theta) for a family made by vi_flow_new, and *logdet =
 * log|det dT/deps| at that eps, so log q(theta) = log N(eps; 0, I) - *logdet. */
void vi_flow_inverse(ViFamily *f, const double *theta, double *eps, double *logdet);

#endif
