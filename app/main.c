/* app/main.c: the easel executable; everything else is in libeasel-app. */
#include <glib/gi18n.h>
#include <locale.h>

#include "easel-application.h"

int
main (int argc, char *argv[])
{
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, EASEL_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_autoptr(EaselApplication) app = easel_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
