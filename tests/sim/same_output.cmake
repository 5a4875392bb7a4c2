# Runs netsim_demo twice with the same seed and fails unless both runs
# print the same bytes and the verdict is PASS; a third run with another
# seed must still pass.
foreach(run a b)
  execute_process(COMMAND ${DEMO} --seed=1234 OUTPUT_VARIABLE out_${run}
                  RESULT_VARIABLE rc_${run})
  if(NOT rc_${run} EQUAL 0)
    message(FATAL_ERROR "netsim_demo --seed=1234 failed:\n${out_${run}}")
  endif()
endforeach()
if(NOT out_a STREQUAL out_b)
  message(FATAL_ERROR "same seed, different output:\n${out_a}\n----\n${out_b}")
endif()
execute_process(COMMAND ${DEMO} --seed=99 OUTPUT_VARIABLE out_c
                RESULT_VARIABLE rc_c)
if(NOT rc_c EQUAL 0)
  message(FATAL_ERROR "netsim_demo --seed=99 failed:\n${out_c}")
endif()
message(STATUS "${out_a}")
