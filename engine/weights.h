/* engine/weights.h: one network's tensors inside a checkpoint, under the names Easel's model code
 * uses, with shape checks at load (STYLE.md E3).
 *
 * A network loader makes an EaselWeights for its part of the checkpoint (a prefix such as
 * "model.diffusion_model." in a single file or "unet/" in a diffusers folder) with a rename
 * function that maps each checkpoint key to Easel's internal name (one naming per network, whatever
 * the file's naming), then resolves every tensor it needs once with easel_weights_require (which
 * checks the shape and names the key in its error) and keeps the EaselStTensor pointers. Each
 * forward pass turns them into graph leaves with easel_graph_weight_st: the data is used in place. */
#pragma once

#include <glib.h>

#include "checkpoint.h"
#include "graph.h"

G_BEGIN_DECLS

/* key: the checkpoint name with the prefix removed. Returns Easel's name (transfer full), or NULL
 * to leave the tensor out (non-weights such as position_ids). NULL rename keeps keys as they are. */
typedef char *(*EaselWeightsRename) (const char *key, gpointer user_data);

typedef struct _EaselWeights EaselWeights;

/* Fails when nothing has the prefix, or two keys rename to one name. transfer full; keeps ck's
 * tensors alive only as long as ck is: free the weights first. */
EaselWeights *easel_weights_new (const EaselCheckpoint *ck, const char *prefix, EaselWeightsRename rename,
                                 gpointer user_data, GError **error);
void          easel_weights_free (EaselWeights *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselWeights, easel_weights_free)

const char *easel_weights_prefix (const EaselWeights *w);
gsize       easel_weights_n (const EaselWeights *w);
/* NULL when absent; marks the tensor used. */
const EaselStTensor *easel_weights_get (EaselWeights *w, const char *name);
gboolean             easel_weights_has (const EaselWeights *w, const char *name);
/* The tensor, which must exist with n_dims dims equal to shape (-1 in shape: any size). The error
 * names the checkpoint key and both shapes. Marks it used. */
const EaselStTensor *easel_weights_require (EaselWeights *w, const char *name, int n_dims, const gint64 *shape,
                                            GError **error);
/* Checkpoint keys (with prefix) that no get/require asked for, sorted: for --verbose. transfer full. */
GPtrArray *easel_weights_unused (const EaselWeights *w);

/* A graph leaf for a checkpoint tensor (NULL st gives NULL, for optional biases). */
EaselTensor *easel_graph_weight_st (EaselGraph *g, const EaselStTensor *st);

G_END_DECLS
