// The sizes of the tables a module hands the host, in the first released layout (ABI 1.0, frozen
// in abi/history/1.0/switchyard/module.h). A minor only appends slots, so a module built against
// any 1.m header has tables at least this large; the loader accepts every size from here up and
// gives the host a copy at today's size in which the slots the module's table does not cover
// are NULL (Generation keeps those copies), so no caller ever reads past a module's table.
#pragma once

#include <switchyard/module.h>

#include <cstddef>

namespace sy::loader {

// Each is the end of the last slot ABI 1.0 had. Tables only grow at the end, so the 1.0 slots
// sit at the same offsets in today's header.
inline constexpr size_t kHttpFilterSize_1_0 =
    offsetof(sy_http_filter_t, on_queue_ready) + sizeof(sy_http_filter_t::on_queue_ready);
inline constexpr size_t kNetworkFilterSize_1_0 =
    offsetof(sy_network_filter_t, on_connection_destroy) +
    sizeof(sy_network_filter_t::on_connection_destroy);
inline constexpr size_t kDescriptorSize_1_0 = offsetof(sy_module_descriptor_t, network_filters) +
                                              sizeof(sy_module_descriptor_t::network_filters);

// No table of any 1.x module is larger than this; a larger size is garbage, not a later minor.
inline constexpr size_t kMaxTableSize = 65536;

}  // namespace sy::loader
