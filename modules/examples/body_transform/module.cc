// body_transform: stamp, descriptor and entry, written by the SDK.
#include <switchyard/sdk.hpp>

#include "config.h"
#include "filter.h"

SY_SDK_MODULE(
    "body_transform", "1.0.0",
    sy::sdk::FilterFactory<body_transform::Filter, body_transform::Config>("body_transform"))
