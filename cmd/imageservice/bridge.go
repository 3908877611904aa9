package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imageservice/imageservice/bridge"
)

// bridgeFromEnv returns the bridge's sinks (none, NATS, Kafka or both) and
// topics from the environment. A wrong value names its variable; secrets
// never appear in the error.
func bridgeFromEnv() ([]bridge.Sink, bridge.Topics, error) {
	topics := bridge.Topics{Image: env("KAFKA_IMAGE_TOPIC"), Dither: env("KAFKA_DITHER_TOPIC"), Events: env("KAFKA_EVENTS_TOPIC")}
	var sinks []bridge.Sink
	if env("NATS_URL") != "" {
		s, err := natsFromEnv(topics)
		if err != nil {
			return nil, topics, err
		}
		sinks = append(sinks, s)
	}
	if env("KAFKA_SERVER") != "" {
		s, err := kafkaFromEnv(topics)
		if err != nil {
			closeSinks(sinks)
			return nil, topics, err
		}
		sinks = append(sinks, s)
	}
	return sinks, topics, nil
}

func natsFromEnv(topics bridge.Topics) (bridge.Sink, error) {
	window, err := time.ParseDuration(env("NATS_DUPLICATE_WINDOW"))
	if err != nil || window <= 0 {
		return nil, fmt.Errorf("NATS_DUPLICATE_WINDOW must be a positive duration such as 2m, not %q", env("NATS_DUPLICATE_WINDOW"))
	}
	s, err := bridge.NewNATS(bridge.NATSOptions{URL: env("NATS_URL"), Stream: env("NATS_STREAM"),
		Subjects: topics.All(), DuplicateWindow: window})
	if err != nil {
		// The URL may hold credentials: name the variable, not the value.
		return nil, errors.New("NATS_URL is not a usable NATS server URL")
	}
	return s, nil
}

func kafkaFromEnv(topics bridge.Topics) (bridge.Sink, error) {
	create, err := envBool("KAFKA_CREATE_TOPICS")
	if err != nil {
		return nil, err
	}
	useTLS, err := envBool("KAFKA_TLS")
	if err != nil {
		return nil, err
	}
	mech := strings.ToUpper(env("KAFKA_SASL_MECHANISM"))
	switch mech {
	case "", bridge.SASLPlain, bridge.SASLScramSHA256, bridge.SASLScramSHA512:
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM must be %s, %s or %s, not %q",
			bridge.SASLPlain, bridge.SASLScramSHA256, bridge.SASLScramSHA512, env("KAFKA_SASL_MECHANISM"))
	}
	if mech != "" && env("KAFKA_SASL_USERNAME") == "" {
		return nil, errors.New("KAFKA_SASL_USERNAME must be set with KAFKA_SASL_MECHANISM")
	}
	var brokers []string
	for b := range strings.SplitSeq(env("KAFKA_SERVER"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	s, err := bridge.NewKafka(bridge.KafkaOptions{Brokers: brokers, Topics: topics.All(), CreateTopics: create,
		SASLMechanism: mech, SASLUsername: env("KAFKA_SASL_USERNAME"), SASLPassword: env("KAFKA_SASL_PASSWORD"), TLS: useTLS})
	if err != nil {
		return nil, fmt.Errorf("KAFKA_SERVER %q: %w", env("KAFKA_SERVER"), err)
	}
	return s, nil
}

// closeSinks closes the bridge's sinks at shut-down.
func closeSinks(sinks []bridge.Sink) {
	for _, s := range sinks {
		_ = s.Close()
	}
}
