// Typed dynamic metadata (ABI 1.2): a stream's namespaces hold JSON values, read back as
// strings by the 1.0 functions and as whole JSON objects by the 1.2 ones; and the 1.2 host
// slots that read metadata, config metadata and typed attributes.
#pragma once

#include <switchyard/module.h>

#include <map>
#include <string>
#include <string_view>

namespace sy::filters {

class FilterChain;

// One member of a namespace. A JSON string is kept decoded (TEXT is the string, JSON false),
// so metadata_get returns it as metadata_set stored it; any other JSON value is kept as its
// text (JSON true).
struct MetadataValue {
  std::string text;
  bool json = false;
};
using MetadataNamespace = std::map<std::string, MetadataValue>;

// Reads TEXT, which must be exactly one well-formed JSON object (RFC 8259: strict UTF-8, no
// duplicate member names at its top level, nesting at most 64 deep), into *OUT's members.
// Returns false, leaving *OUT unchanged, otherwise.
bool parse_json_object(std::string_view text, MetadataNamespace* out);

// NS as a compact JSON object, members in key order.
std::string namespace_json(const MetadataNamespace& ns);

// Fills the 1.2 typed-metadata slots of the host table, and the two later 1.2 slots
// (continue_headers_with_body, module_config) (host.cc calls it while building the table).
void install_metadata_slots(sy_host_t* h);

// The access log's view of a stream's dynamic metadata and filter state. DYNAMIC_METADATA_JSON:
// the member "ns:key" as JSON text (a string member quoted), or with "ns" alone the whole
// namespace as a JSON object. FILTER_STATE_TEXT: the value of a filter-state key. False when
// absent.
bool dynamic_metadata_json(const FilterChain& chain, std::string_view ns_key, std::string* out);
bool filter_state_text(const FilterChain& chain, std::string_view key, std::string* out);

}  // namespace sy::filters
