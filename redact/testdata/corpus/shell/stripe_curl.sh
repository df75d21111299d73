#!/usr/bin/env bash
set -euo pipefail
# refund the duplicate charge from ticket SUP-2291
curl https://api.stripe.com/v1/refunds \
  -u 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: \
  -d charge=ch_5ESljurG2My2HX8pZoCVNQUm \
  -d reason=duplicate
# docs example, safe to keep:
# curl https://api.stripe.com/v1/charges -u sk_test_4eC39HqLyjWDarjtT1zdp7dc:
