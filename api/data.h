/* data.h — data for a model's data block, read from JSON in CmdStan's layout.
 *
 * The loaders return a DataSource (ir/interp.h) whose get() builds each data
 * variable as a Value of the declared type and sizes and checks its declared
 * constraint.  Every message names the file and the variable:
 *     data.json: "y": expected 8 reals (J = 8), got 7
 *     data.json: "sigma[3]": -1 is below the lower bound 0
 *     data.json: missing data "J"
 * Layout (as CmdStan reads it): ints without a decimal point or exponent; reals
 * accept ints and "Inf"/"-Inf"/"Infinity"/"NaN" strings (and the bare tokens
 * NaN, Infinity, -Infinity that Python's json module writes); vectors and row
 * vectors are flat arrays; matrices are arrays of rows; arrays nest row-major;
 * bools are true/false or 0/1; strings are JSON strings.  Fields the model does
 * not declare are ignored.
 */
#ifndef PPL_DATA_H
#define PPL_DATA_H

#include <stddef.h>

#include "../ir/interp.h"

/* Parse json[0..len) (a top-level object). `name` is the file name used in
   messages (NULL: "<data>"). On a JSON syntax error returns NULL with
   DIAG_DATA "data.json:3:14: invalid JSON: <jansson's text>". */
DataSource *data_json_string(const char *json, size_t len, const char *name, Diag *d);

/* The same from a JSON object already built (ppl_data_real's typed arrays:
   no text in between); root stays the caller's. */
struct json_t;
DataSource *data_json_object(struct json_t *root, const char *name);

/* Read and parse a file; DIAG_IO "cannot read data.json: No such file or
   directory" when it cannot be read. */
DataSource *data_json_file(const char *path, Diag *d);

/* The top-level names of a source made by the functions above, in file
   order (*keys: GC memory owned by the source); returns how many. */
int data_json_keys(DataSource *src, const char *const **keys);
/* The shape of value `name`: -1 if absent, else its array nesting (0 for a
   scalar, 1 for [..], 2 for [[..], ..]) with the lengths along the first
   elements in dims[0..rank) (at most 2 levels are looked at). */
int data_json_shape(DataSource *src, const char *name, int64_t *dims);

/* A source without any data: every lookup fails with `missing data "N"`. */
DataSource *data_empty(void);

#endif
