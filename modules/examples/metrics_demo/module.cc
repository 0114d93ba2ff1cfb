// metrics_demo: stamp, descriptor and entry, written by the SDK.
#include <switchyard/sdk.hpp>

#include "config.h"
#include "filter.h"

SY_SDK_MODULE("metrics_demo", "1.0.0",
              sy::sdk::FilterFactory<metrics_demo::Filter, metrics_demo::Config>("metrics_demo"))
