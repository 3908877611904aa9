package main

import (
	"strings"
	"testing"

	"github.com/imageservice/imageservice/bridge"
)

func TestBridgeFromEnvOff(t *testing.T) {
	t.Setenv("NATS_URL", "")
	t.Setenv("KAFKA_SERVER", "")
	sinks, topics, err := bridgeFromEnv()
	if err != nil || len(sinks) != 0 {
		t.Fatalf("sinks %v, err %v: want none", sinks, err)
	}
	if topics != (bridge.Topics{Image: "images", Dither: "dithers", Events: "imageservice.events"}) {
		t.Errorf("topics %+v", topics)
	}
}

func TestBridgeFromEnvBoth(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("KAFKA_SERVER", "127.0.0.1:1, 127.0.0.1:2")
	t.Setenv("KAFKA_IMAGE_TOPIC", "img")
	sinks, topics, err := bridgeFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks(sinks)
	if len(sinks) != 2 || sinks[0].Name() != "nats" || sinks[1].Name() != "kafka" || topics.Image != "img" {
		t.Errorf("sinks %v, topics %+v: want nats and kafka", sinks, topics)
	}
}

func TestBridgeFromEnvWrongValues(t *testing.T) {
	cases := []struct{ name, value, extra, wantVar string }{
		{"NATS_DUPLICATE_WINDOW", "soon", "NATS_URL", "NATS_DUPLICATE_WINDOW"},
		{"KAFKA_SASL_MECHANISM", "GSSAPI", "KAFKA_SERVER", "KAFKA_SASL_MECHANISM"},
		{"KAFKA_TLS", "maybe", "KAFKA_SERVER", "KAFKA_TLS"},
		{"KAFKA_CREATE_TOPICS", "2", "KAFKA_SERVER", "KAFKA_CREATE_TOPICS"},
		{"KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SERVER", "KAFKA_SASL_USERNAME"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Setenv("NATS_URL", "")
			t.Setenv("KAFKA_SERVER", "")
			t.Setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")
			t.Setenv(c.extra, map[string]string{"NATS_URL": "nats://127.0.0.1:1", "KAFKA_SERVER": "127.0.0.1:1"}[c.extra])
			t.Setenv(c.name, c.value)
			sinks, _, err := bridgeFromEnv()
			closeSinks(sinks)
			if err == nil || !strings.Contains(err.Error(), c.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, c.wantVar)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
