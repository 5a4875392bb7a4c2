# Runs a seed sweep (netsim_demo --seeds, kv_cluster --simulate --seeds)
# and checks its exit code and last line.
#   -DDEMO=path -DARGS="--seeds=1-100 --jobs=2" -DEXPECT_RC=0
#   -DEXPECT_LAST="passed: 100 of 100 seeds"   (a regex for the whole
#       last line)
#   -DREPLAY_VERDICT="VERDICT: FAIL (seed 1)"  (optional: run the replay
#       command the last line names and look for this in its output)
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${DEMO} ${args} OUTPUT_VARIABLE out
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL EXPECT_RC)
  message(FATAL_ERROR "${DEMO} ${ARGS}: exit ${rc}, expected "
                      "${EXPECT_RC}\n${out}\n${err}")
endif()
string(STRIP "${out}" stripped)
string(FIND "${stripped}" "\n" pos REVERSE)
math(EXPR pos "${pos} + 1")
string(SUBSTRING "${stripped}" ${pos} -1 last)
if(NOT last MATCHES "^${EXPECT_LAST}$")
  message(FATAL_ERROR "${DEMO} ${ARGS}: last line\n  ${last}\n"
                      "does not match\n  ${EXPECT_LAST}\n${out}")
endif()
if(REPLAY_VERDICT)
  if(NOT last MATCHES "\\(replay: ([^)]*)\\)$")
    message(FATAL_ERROR "no replay command in: ${last}")
  endif()
  separate_arguments(replay UNIX_COMMAND "${CMAKE_MATCH_1}")
  # cmake -E env: the command may start with SHARDWIRE_FAST_PATH=0.
  execute_process(COMMAND ${CMAKE_COMMAND} -E env ${replay}
                  OUTPUT_VARIABLE rout RESULT_VARIABLE rrc)
  string(FIND "${rout}" "${REPLAY_VERDICT}" found)
  if(rrc EQUAL 0 OR found EQUAL -1)
    message(FATAL_ERROR "replay ${CMAKE_MATCH_1}: exit ${rrc}, expected "
                        "1 and '${REPLAY_VERDICT}'\n${rout}")
  endif()
endif()
message(STATUS "${out}")
