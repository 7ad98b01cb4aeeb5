/* app/cli/golden-text.c: golden kinds "tokenizer" and "prompt" (tokenizer/manifest.json). */
#include "golden.h"

static void
collect_tokenizer (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_tokenizer = { "tokenizer", collect_tokenizer, NULL };

static void
collect_prompt (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_prompt = { "prompt", collect_prompt, NULL };
