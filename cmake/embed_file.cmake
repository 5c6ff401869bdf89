# cmake -DIN=file -DOUT=file.cpp -DNAME=kName -DNAMESPACE=ns -P embed_file.cmake: writes a C++ source defining
# `const char NAME[]` with IN's bytes (the chat page the server serves from the binary).
file(READ "${IN}" content)
string(FIND "${content}" ")TRITTER_EMBED\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )TRITTER_EMBED\"")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/embed_file.cmake; do not edit.\nnamespace ${NAMESPACE} {\nextern const char ${NAME}[];\nconst char ${NAME}[] = R\"TRITTER_EMBED(${content})TRITTER_EMBED\";\n}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
