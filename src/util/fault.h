#pragma once
// Fault injection for the reliability tests: named points in long jobs where a test can make the process
// die as if killed. Inactive unless SEGSCALE_FAULT is set, e.g. SEGSCALE_FAULT=prep.shard_committed:2
// sends SIGKILL to the process the 2nd time that point is reached; a point whose name contains "hang" blocks
// forever instead, one whose name contains "until_stop" blocks until SIGINT/SIGTERM/SIGUSR1 arrive under a
// StopSignalScope (a test's deterministic place to interrupt a job). SEGSCALE_FAULT_RANK=R limits it to the data-parallel worker with RANK=R. Costs a string
// compare when set, nothing otherwise.
namespace segscale {

void fault_point(const char* name);

// For write paths: true when SEGSCALE_FAULT names `name` and its count is reached (and every later time), so
// the caller fails the write as the file system would with ENOSPC ("disk full"). Tests full-disk handling
// without filling a disk.
bool fault_fail(const char* name);

}  // namespace segscale
