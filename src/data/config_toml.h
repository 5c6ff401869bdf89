// The TOML subset `tritter curate --config curate.toml` reads (issue 8 asks for toml or json): `[table]`
// headers (one level), `key = value` with strings ("basic" with \" \\ \n \t escapes, 'literal'), integers,
// floats, booleans and one-line arrays of those, `#` comments. Converted to the JSON the config reader takes.
// Not supported (an error names the line): dotted keys, nested tables, inline tables, multi-line values, dates.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tritter::data {

// Throws Error "<where> line N: what: found X, expected Y" for anything outside the subset or a duplicate key.
nlohmann::json parse_toml_subset(std::string_view text, const std::string& where);

}  // namespace tritter::data
