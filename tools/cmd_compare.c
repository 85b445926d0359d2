/* cmd_compare.c — placeholder while it is written. */
#include "cli.h"

int cmd_compare(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error(1, "compare: not written yet");
}
