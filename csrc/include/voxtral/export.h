// Symbol visibility for libvoxtral's public API (everything else is hidden).
#pragma once

#if defined(_WIN32)
#if defined(VOXTRAL_BUILDING_LIBRARY)
#define VOXTRAL_API __declspec(dllexport)
#else
#define VOXTRAL_API __declspec(dllimport)
#endif
#else
#define VOXTRAL_API __attribute__((visibility("default")))
#endif
