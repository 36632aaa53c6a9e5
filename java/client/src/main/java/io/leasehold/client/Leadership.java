package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.Map;

/** A process's leadership (one per process, covering every component it publishes). */
public record Leadership(
        String contenderId, String sessionId, long token, long ttlMs, long remainingMs, Map<String, String> components) {
    static Leadership from(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) return null;
        Map<String, String> components = new LinkedHashMap<>();
        for (JsonNode c : n.path("components")) {
            components.put(c.path("component").asText(), c.hasNonNull("address") ? c.get("address").asText() : null);
        }
        return new Leadership(
                n.path("contenderId").asText(null),
                n.path("sessionId").asText(null),
                n.path("token").asLong(),
                n.path("ttlMs").asLong(),
                n.path("remainingMs").asLong(),
                java.util.Collections.unmodifiableMap(components));
    }
}
