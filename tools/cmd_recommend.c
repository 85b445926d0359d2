/* cmd_recommend.c — placeholder while it is written. */
#include "cli.h"

int cmd_recommend(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error(1, "recommend: not written yet");
}
