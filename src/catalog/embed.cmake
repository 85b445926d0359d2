# embed.cmake — turn data/catalog.json into a C array so that libherd carries
# its catalog (`herd catalog` then works from any directory, and the data can
# never be out of step with the binary). Run by the build as
#   cmake -DIN=data/catalog.json -DOUT=catalog_data.c -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" nhex)
math(EXPR n "${nhex} / 2")
# One "0xNN," per byte, 16 bytes to a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}"
  "/* Generated from data/catalog.json by src/catalog/embed.cmake; do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char herd_catalog_data[];\n"
  "extern const size_t herd_catalog_data_len;\n"
  "const unsigned char herd_catalog_data[] = {\n${bytes}0x00};\n"
  "const size_t herd_catalog_data_len = ${n};\n")
