# Migrations are compiled into each service binary so a container needs no SQL files beside it.
# bligate_embed_sql(<target> <schema> <dir>) generates <target>_migrations.c defining
#   const struct bg_migration <schema>_migrations[]; const size_t <schema>_migrations_len;
function(bligate_embed_sql target schema dir)
  file(GLOB sql_files CONFIGURE_DEPENDS ${dir}/*.sql)
  list(SORT sql_files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_migrations.c)
  # a CMake list would split into separate arguments; pass the files '|'-joined
  string(REPLACE ";" "|" files_arg "${sql_files}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSCHEMA=${schema} "-DFILES=${files_arg}"
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_sql_run.cmake
    DEPENDS ${sql_files} ${PROJECT_SOURCE_DIR}/cmake/embed_sql_run.cmake
    COMMENT "Embedding ${schema} migrations"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
