#pragma once
// Fault injection for the reliability tests: named points in long jobs where a test can make the process
// die as if killed. Inactive unless SEGSCALE_FAULT is set, e.g. SEGSCALE_FAULT=prep.shard_committed:2
// sends SIGKILL to the process the 2nd time that point is reached. Costs one relaxed atomic load otherwise.
namespace segscale {

void fault_point(const char* name);

}  // namespace segscale
