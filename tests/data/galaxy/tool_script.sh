#!/bin/bash

# The following block can be used by the job system
# to ensure this script is runnable before actually attempting
# to run it.
if [ -n "$ABC_TEST_JOB_SCRIPT_INTEGRITY_XYZ" ]; then
    exit 42
fi
set -e
cat '@JOB@/inputs/dataset_49e1c4c7-8817-402b-97f7-911d716584fa.dat' > '@JOB@/outputs/dataset_6cb4cd7c-1b3f-4393-a4c0-dd6bb1781950.dat' && echo 'ran remotely' >> '@JOB@/outputs/dataset_6cb4cd7c-1b3f-4393-a4c0-dd6bb1781950.dat'