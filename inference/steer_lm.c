/* steer_lm.c — what the steering engine reads from the `lm` / `lm_next`
 * families' calls: which backend, which context, how a string ends, which
 * tokens a mask allows.  Kept apart from steer.c because it follows the
 * families' parameter lists (stdlib), which the language defines. */
#include <stdio.h>
#include <string.h>

#include "steer.h"

bool steer_is_lm(const DistFamily *f) {
  return f && (!strcmp(f->name, "lm") || !strcmp(f->name, "lm_next"));
}

static const char *steer_str(const Value *v, size_t *len) {
  if (v->k != V_STR || !v->s) return *len = 0, "";
  *len = v->s->len;
  return v->s->data;
}

bool steer_call(const DistCall *dc, SteerCall *c, char *err, size_t errsz) {
  memset(c, 0, sizeof *c);
  c->kind = strcmp(dc->fam->name, "lm") ? STEER_LM_NEXT : STEER_LM;
  size_t n;
  c->context = steer_str(&dc->p[0], &c->context_len);
  const char *model;
  if (c->kind == STEER_LM) {
    c->stop = steer_str(&dc->p[1], &c->stop_len);
    c->max_tokens = (int)val_as_real(dc->p[2]);
    model = steer_str(&dc->p[3], &n);
    c->avoid = steer_str(&dc->p[4], &n);
  } else {
    model = steer_str(&dc->p[1], &n);
    c->avoid = steer_str(&dc->p[2], &n);
  }
  const LmSet *set = dc->fam->ctx;
  c->b = set ? lm_set_find(set, model) : NULL;
  if (!c->b) {
    snprintf(err, errsz, "%s: no language model named '%s' in this run", dc->fam->name, model);
    return false;
  }
  return true;
}

/* Length of the UTF-8 sequence starting with byte c (1 for a stray byte). */
static int steer_utf8_len(unsigned char c) {
  return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

void steer_avoid_mask(const LmBackend *b, const char *avoid, uint8_t *allow) {
  char buf[256];
  size_t na = strlen(avoid);
  for (int t = 0; t < b->n_vocab; t++) {
    allow[t] = 1;
    if (t == b->eos) continue;
    int n = b->token_text(b->self, t, buf, (int)sizeof buf - 1);
    if (n < 0) continue; /* not a token: the backend gives it probability 0 */
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    buf[n] = 0;
    for (size_t k = 0; k < na && allow[t];) {
      int m = steer_utf8_len((unsigned char)avoid[k]);
      if (k + (size_t)m > na) m = (int)(na - k);
      for (int i = 0; i + m <= n && allow[t]; i++)
        if (!memcmp(buf + i, avoid + k, (size_t)m)) allow[t] = 0;
      k += (size_t)m;
    }
  }
}
