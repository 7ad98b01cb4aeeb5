/* app/cli/cli-devices.c: `easel-cli devices`, the Vulkan devices this machine offers, what each can
 * do (memory, fp16/int8, cooperative matrices, subgroup size, binding range), whether the backend
 * can use it, and which shader variants it would run. The device a plain run picks is marked. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/vulkan/devices.h"

static const char *
yes_no (gboolean b)
{
  return b ? "yes" : "no";
}

static void
print_size (const char *label, guint64 bytes)
{
  if (bytes >= ((guint64) 1 << 30))
    printf ("    %-26s %.1f GiB\n", label, (double) bytes / (1 << 30));
  else
    printf ("    %-26s %" G_GUINT64_FORMAT " MiB\n", label, bytes >> 20);
}

/* "no", or the f16 x f16 -> f32 subgroup shapes M x N x K an extension lists */
static void
print_coopmat (const char *label, gboolean present, const guint8 (*shapes)[3], guint n)
{
  GString *s = g_string_new (present ? "" : "no");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%ux%ux%u", i ? " " : "", shapes[i][0], shapes[i][1], shapes[i][2]);
  if (present && n == 0)
    g_string_append (s, "yes, no f16 x f16 -> f32 shape");
  printf ("    %-26s %s\n", label, s->str);
  g_string_free (s, TRUE);
}

int
easel_cli_devices (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
      printf ("Usage: easel-cli devices\n\nLists the Vulkan devices. EASEL_VULKAN_DEVICE=INDEX|NAME picks one for every run;\n"
              "without it, the first usable GPU, else a CPU implementation (lavapipe), else the CPU backend.\n");
      return 0;
    }
    easel_cli_error ("devices: unknown option '%s' (try --help)", argv[i]);
    return 2;
  }
  g_autoptr(GArray) devices = easel_vulkan_list_devices (&error);
  if (devices == NULL) {
    printf ("No Vulkan: %s\nEasel runs on the CPU backend.\n", error->message);
    return 0;
  }
  gboolean any = FALSE;
  if (devices->len == 0)
    printf ("No Vulkan device.\n");
  for (guint i = 0; i < devices->len; i++) {
    const EaselVulkanDeviceInfo *d = &g_array_index (devices, EaselVulkanDeviceInfo, i);
    printf ("%u: %s (%s, Vulkan %u.%u.%u)%s\n", d->index, d->name, d->type, (d->api_version >> 22) & 0x7f,
            (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff,
            d->chosen ? "  [default]" : d->usable ? "" : "  [not usable]");
    any |= d->chosen;
    if (!d->usable)
      printf ("    %-26s %s\n", "why", d->reason);
    print_size ("device-local memory", d->device_local_bytes);
    printf ("    %-26s arithmetic %s, 16-bit storage %s\n", "fp16", yes_no (d->fp16_math), yes_no (d->storage16));
    printf ("    %-26s arithmetic %s, 8-bit storage %s\n", "int8", yes_no (d->int8_math), yes_no (d->storage8));
    print_coopmat ("cooperative matrix (KHR)", d->coopmat_khr, d->coopmat_khr_shapes, d->n_coopmat_khr_shapes);
    print_coopmat ("cooperative matrix (NV)", d->coopmat_nv, d->coopmat_nv_shapes, d->n_coopmat_nv_shapes);
    printf ("    %-26s %u\n", "subgroup size", d->subgroup_size);
    print_size ("max storage buffer range", d->max_storage_buffer_range);
    print_size ("max allocation", d->max_allocation);
    printf ("    %-26s %u KiB\n", "shared memory", d->max_shared_memory >> 10);
    if (d->usable) {
      g_auto (GStrv) variants = easel_vulkan_active_variants (d);
      g_autofree char *list = g_strjoinv (" ", variants);
      printf ("    %-26s %s\n", "shader variants", list);
    }
  }
  if (!any)
    printf ("\nNo device for a plain run%s: Easel runs on the CPU backend.\n",
            g_getenv ("EASEL_VULKAN_DEVICE") ? " (EASEL_VULKAN_DEVICE names none that is usable)" : "");
  return 0;
}
