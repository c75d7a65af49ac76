/* plate_vec.h — the vectorised plate: which plates' bodies can run once over
 * a whole minibatch instead of once per row (issue 13, the VAE's training).
 *
 * A plate (`plate (i in 1:N, batch = B)`) whose body does the same thing to
 * every row — the same network calls, element-wise arithmetic and scalar
 * densities, no branches, loops or calls, no per-row shapes, i used only to
 * pick row i of something outside the plate — has a row-independent body.
 * The interpreter may then run it once over the B rows of a minibatch
 * (ir/interp.c, exec_plate_vec): each per-row value is "lifted" to hold all
 * rows at once (a real, vector or row vector of K elements as a K x B matrix,
 * column b the row's value, so the elements keep the row loop's order; an
 * int or an array, e.g. a row of data, as an array of the B rows' values),
 * a network call is one batched forward pass (one GEMM per layer), and each
 * density is one call over all rows (one tape node).  The handler sees one
 * sample() per latent of the body, at the address NAME[v] (v the plate's
 * loop variable, in place of the row's index) with a K x B matrix type, and
 * one observe() per observation; the plate's N / B weight applies as in the
 * row loop (interp_plate_scale).  The results equal the row loop's up to the
 * order of floating-point sums.
 *
 * This file is the analysis (pure IR, prefix pv_): which plates qualify and,
 * for the others, why not; and the plan the interpreter follows.
 */
#ifndef PPL_PLATE_VEC_H
#define PPL_PLATE_VEC_H

#include <stdbool.h>
#include <stddef.h>

#include "ir.h"

/* The plan of one plate: lifted[r] for each register of main (PV_* below). */
enum { PV_UNIFORM = 0, PV_LIFTED = 1, PV_LOOPVAR = 2 };

typedef struct PvPlan {
  const IrInstr *plate; /* the IR_FOR */
  uint8_t *lifted;      /* per register of main */
} PvPlan;

/* The plates of a program that may run vectorised (the set an engine gives
 * the interpreter, interp_set_plate_vec). */
typedef struct PvSet {
  int n;
  PvPlan *plans;
} PvSet;

/* Can plate `plate` (an IR_FOR with a batch size in fn's blocks) run over a
 * minibatch at once?  On success *plan is filled; otherwise false with the
 * reason in why ("the loop variable i is used other than to pick a row
 * (vae.ppl:12:5)"). */
bool pv_analyze(const IrFunc *fn, const IrInstr *plate, PvPlan *plan, char *why, size_t whysz);

/* The vectorisable plates of p's guide and model blocks: every plate with a
 * batch size of a loop-variable name for which all plates of that name (the
 * guide's and the model's are matched by name) qualify.  When report is not
 * NULL, *report gets one line per plate with a batch size: "plate i
 * (vae.ppl:20:3): one pass over the minibatch" or "... row by row: WHY". */
PvSet *pv_program(const IrProgram *p, const char **report);

/* The plan of instruction ins in s, or NULL. */
const PvPlan *pv_find(const PvSet *s, const IrInstr *ins);

/* Is builtin name an element-wise function of one real argument (exp, log,
 * tanh, inv_logit, ...), which a lifted value passes through as a whole? */
bool pv_elementwise(const char *name);

/* Is ins (in a plate with these lifted registers) a product over each row
 * that the lifted run makes one matrix product: u * x[i] or x[i] * u (a row
 * vector times a vector, one of them per row), dot_product of a per-row
 * vector and one that is not, or sum of a per-row vector? */
bool pv_is_row_product(const IrFunc *fn, const uint8_t *lifted, const IrInstr *ins);

/* Is ins a matrix that is not per row times a per-row vector (W * x[i]),
 * which the lifted run makes one product with the K x B matrix? */
bool pv_is_mat_vec(const IrFunc *fn, const uint8_t *lifted, const IrInstr *ins);

/* ---- lifted values (the interpreter's lifted execution) ----
 * A register of static type t holds, lifted over B rows: a K x B matrix when
 * t is real, vector or row vector (pv_matrix_form), else an array of the B
 * rows' values. */
bool pv_matrix_form(Type t);
/* The B rows' values (rows[b] of static type t, each of the same size)
   lifted; false with a message when their sizes differ. */
bool pv_stack(const Value *rows, int B, Type t, Value *out, char *err, size_t errsz);
/* Value u, the same for every row, lifted. */
bool pv_repeat(Value u, int B, Type t, Value *out, char *err, size_t errsz);
/* A vector or row vector's elements as a row vector (the same data). */
Value pv_as_row(Value v);
/* A matrix of like's shape (a lifted value) filled with the number u, its
   node in every element. */
bool pv_fill_like(Value u, Value like, Value *out);
/* Row b of lifted value l of static type t (a new value for the matrix form). */
Value pv_row(Value l, Type t, int b);
/* to_vector of each row of l (static type t): a K x B matrix. */
bool pv_to_vector(Value l, Type t, int B, Value *out, char *err, size_t errsz);
/* Rows lo..hi (1-based, inclusive) of a K x B matrix, with their nodes. */
bool pv_rows(Value l, int64_t lo, int64_t hi, Value *out, char *err, size_t errsz);
/* The transpose of a matrix, with its nodes: the row-major [B, K] a batched
   network call takes is the K x B lifted form transposed. */
Value pv_transpose(Value m);

#endif
