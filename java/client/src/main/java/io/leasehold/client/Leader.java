package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;

/** A component's leader as leasehold answers it; {@code address} is null until confirmed. */
public record Leader(String contenderId, String sessionId, long fencingToken, String address, long leaseRemainingMs) {
    static Leader from(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) return null;
        return new Leader(
                n.path("contenderId").asText(null),
                n.path("sessionId").asText(null),
                n.path("fencingToken").asLong(),
                n.hasNonNull("address") ? n.get("address").asText() : null,
                n.path("leaseRemainingMs").asLong());
    }
}
