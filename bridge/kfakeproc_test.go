package bridge_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfakeChildEnv makes the test binary a kfake broker process (see
// TestMain); its value is the time the broker takes to answer each
// produce request ("0s": at once).
const kfakeChildEnv = "BRIDGE_TEST_KFAKE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(kfakeChildEnv) != "" {
		runKfakeChild()
		return
	}
	os.Exit(m.Run())
}

// runKfakeChild runs a one-broker kfake cluster, prints its address, and
// stops when its standard input closes (the parent went away).
func runKfakeChild() {
	latency, err := time.ParseDuration(os.Getenv(kfakeChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if latency > 0 {
		// Each produce request waits, as over a network to replicas,
		// while the broker goes on with other requests.
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			c.SleepControl(func() { time.Sleep(latency) })
			return nil, nil, false
		})
	}
	fmt.Println(c.ListenAddrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
}

// startKafkaProcess starts a kfake broker in a child process, as a broker
// runs outside the service, and returns its address. The broker answers
// each produce request after latency.
func startKafkaProcess(tb testing.TB, latency time.Duration) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), kfakeChildEnv+"="+latency.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatalf("kfake child printed no address: %v", err)
	}
	return strings.TrimSpace(line)
}
