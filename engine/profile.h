/* engine/profile.h: per-op time profiles ($EASEL_PROFILE=1), shared by the backends. A backend adds
 * one record per graph node it ran, with the seconds it took on its clock (the CPU backend: wall time
 * around the node; the Vulkan backend: GPU timestamps around the node's dispatches). The profile
 * sums them per op kind and per (op, shape) key, and prints both, the shape table as the 20 entries
 * of largest total time, with FLOPs and TFLOP/s for the matrix ops and GB/s for the others.
 *
 * Shape keys are stable strings that tools/bench-torch.py parses, e.g.
 *   "linear M=8192 K=320 N=1280"
 *   "conv2d B=2 C=320 H=64 W=64 O=320 k=3 s=1 p=1"
 *   "attention B=2 H=8 Lq=4096 Lk=4096 D=40"
 *   "group_norm B=2 C=320 HW=4096 G=32 silu=1"
 * and "<op> [d0, d1, ...]" (the output's shape) for the other ops. */
#pragma once

#include <stdio.h>

#include "graph.h"

G_BEGIN_DECLS

typedef struct _EaselProfile EaselProfile;

/* What the profile needs of a node, taken when it is recorded (the graph may be gone by the time
 * a GPU's timestamps are read). */
typedef struct {
  EaselOp op;
  char key[128];
  double flops;                 /* easel_tensor_flops */
  double bytes;                 /* the node's sources and output as the graph states them */
} EaselProfileNode;

/* One aggregated row: per op kind (key = the op's name) or per (op, shape). */
typedef struct {
  const char *key;              /* owned by the profile */
  EaselOp op;
  guint64 calls;
  double seconds, flops, bytes;
} EaselProfileEntry;

/* clock: what the seconds are, for the header ("wall", "GPU timestamps"). transfer full.
 * Reference counted: a GPU backend keeps a reference until its last timestamps are read. */
EaselProfile *easel_profile_new (const char *clock);
EaselProfile *easel_profile_ref (EaselProfile *p);
void          easel_profile_free (EaselProfile *p);   /* drops a reference; NULL is fine */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselProfile, easel_profile_free)
void          easel_profile_reset (EaselProfile *p);

const char *easel_op_name (EaselOp op);
/* The record of node t (shape key, flops, bytes). */
void        easel_profile_node_init (EaselProfileNode *n, const EaselTensor *t);
void        easel_profile_add (EaselProfile *p, const EaselProfileNode *n, double seconds);
/* easel_profile_node_init + easel_profile_add */
void        easel_profile_add_tensor (EaselProfile *p, const EaselTensor *t, double seconds);

double      easel_profile_total_seconds (const EaselProfile *p);
/* Rows sorted by total seconds, largest first (by_shape: per (op, shape), else per op kind).
 * GArray of EaselProfileEntry, valid until the profile changes; transfer container. */
GArray     *easel_profile_entries (const EaselProfile *p, gboolean by_shape);
/* The two tables, headed by title; top: how many shape rows (0: all). Nothing when empty. */
void        easel_profile_print (const EaselProfile *p, FILE *f, const char *title, guint top);

G_END_DECLS
