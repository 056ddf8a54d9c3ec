#!/bin/sh
# Registers the engine's Temporal namespace and its custom search attributes. Idempotent: it
# creates only what is missing, so it runs on every `docker compose up` and is the same sequence
# deploy/README.md gives for a real cluster.
#
# The Temporal CLI reads TEMPORAL_ADDRESS from the environment.
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS}"
NAMESPACE="${BILLING_NAMESPACE:-billing}"
RETENTION="${BILLING_NAMESPACE_RETENTION:-30d}"

until temporal operator cluster health 2>/dev/null | grep -q SERVING; do
  echo "waiting for the Temporal frontend at $TEMPORAL_ADDRESS"
  sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE already exists"
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
    --description "Recurring billing for veterinary health plans"
fi

# A new namespace takes a few seconds to reach every frontend's cache.
until temporal operator search-attribute list --namespace "$NAMESPACE" >/dev/null 2>&1; do
  sleep 1
done

# name:type - finance lists workflows by these (see docs in deploy/README.md).
for pair in ClientId:Keyword LocationId:Keyword PlanId:Keyword SubscriptionStatus:Keyword \
            InvoiceId:Keyword PaymentStatus:Keyword NextDueAt:Datetime; do
  name="${pair%%:*}"
  type="${pair#*:}"
  if temporal operator search-attribute list --namespace "$NAMESPACE" | grep -qw "$name"; then
    echo "search attribute $name already exists"
  else
    temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
  fi
done

echo "namespace $NAMESPACE and its search attributes are registered"
