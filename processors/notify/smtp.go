package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/imageservice/imageservice/images"
)

// SMTPConfig is a mail server and the sender address.
type SMTPConfig struct {
	// Host and Port of the server (port default 587, 465 for smtps).
	Host, Port string
	// Username and Password, when set, authenticate with PLAIN (only over
	// TLS, or to localhost). The password is never logged.
	Username, Password string
	// From is the sender address.
	From string
	// ImplicitTLS connects with TLS from the start (smtps://); otherwise
	// STARTTLS is used when the server offers it.
	ImplicitTLS bool
	// InsecureSkipVerify skips certificate checks (?insecure=true), for
	// test servers only.
	InsecureSkipVerify bool
}

// ParseSMTPURL reads SMTP_URL: smtp://user:pass@host:587?from=images@example.com
// (smtps:// for implicit TLS on port 465).
func ParseSMTPURL(raw string) (*SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("SMTP_URL is not a URL") // the parse error would repeat the password
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return nil, fmt.Errorf("SMTP_URL must start with smtp:// or smtps://, not %q", u.Scheme+"://")
	}
	c := &SMTPConfig{Host: u.Hostname(), Port: u.Port(), ImplicitTLS: u.Scheme == "smtps",
		From: u.Query().Get("from"), InsecureSkipVerify: u.Query().Get("insecure") == "true"}
	if c.Host == "" {
		return nil, errors.New("SMTP_URL has no host")
	}
	if c.Port == "" {
		c.Port = map[bool]string{true: "465", false: "587"}[c.ImplicitTLS]
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if c.From == "" {
		return nil, errors.New("SMTP_URL needs a sender: add ?from=images@example.com")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return nil, fmt.Errorf("SMTP_URL's from=%q is not an e-mail address", c.From)
	}
	return c, nil
}

// String describes the server without the password.
func (c SMTPConfig) String() string {
	scheme := map[bool]string{true: "smtps", false: "smtp"}[c.ImplicitTLS]
	user := ""
	if c.Username != "" {
		user = c.Username + ":***@"
	}
	return scheme + "://" + user + net.JoinHostPort(c.Host, c.Port) + "?from=" + c.From
}

// LogValue implements slog.LogValuer without the password.
func (c SMTPConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Message is an e-mail with a text and an HTML part.
type Message struct {
	To, Subject, Text, HTML string
	// MessageID is stable across retries so mail clients can spot repeats.
	MessageID string
	Date      time.Time
}

// Bytes renders the message as multipart/alternative.
func (c SMTPConfig) Bytes(m Message) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, text string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("render e-mail: %w", err)
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.text)); err != nil {
			return nil, fmt.Errorf("render e-mail: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("render e-mail: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("render e-mail: %w", err)
	}
	var out bytes.Buffer
	for _, h := range [][2]string{
		{"From", c.From}, {"To", m.To}, {"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", m.Date.Format(time.RFC1123Z)}, {"Message-ID", "<" + m.MessageID + ">"},
		{"MIME-Version", "1.0"}, {"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
	} {
		fmt.Fprintf(&out, "%s: %s\r\n", h[0], h[1])
	}
	out.WriteString("\r\n")
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// Send delivers the message: 5xx replies are permanent, everything else
// (4xx, network) may be retried.
func (c SMTPConfig) Send(ctx context.Context, m Message) error {
	data, err := c.Bytes(m)
	if err != nil {
		return err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", net.JoinHostPort(c.Host, c.Port), err)
	}
	defer cl.Close()
	if err := c.deliver(cl, m.To, data); err != nil {
		return smtpError(err, m.To)
	}
	return nil
}

// dial connects, says hello and upgrades to TLS when it can.
func (c SMTPConfig) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(c.Host, c.Port))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	tlsCfg := &tls.Config{ServerName: c.Host, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in for test servers
	if c.ImplicitTLS {
		conn = tls.Client(conn, tlsCfg)
	}
	cl, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return nil, smtpError(err, "")
	}
	if ok, _ := cl.Extension("STARTTLS"); ok && !c.ImplicitTLS {
		if err := cl.StartTLS(tlsCfg); err != nil {
			cl.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	return cl, nil
}

func (c SMTPConfig) deliver(cl *smtp.Client, to string, data []byte) error {
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			var te *textproto.Error
			var ne net.Error
			if !errors.As(err, &te) && !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return permanent("smtp auth: %v", err) // e.g. no TLS to send the password over
			}
			return fmt.Errorf("auth: %w", err) // a reply, or a connection that failed: try again
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := cl.Rcpt(to); err != nil {
		return fmt.Errorf("rcpt to: %w", err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return cl.Quit()
}

// smtpError makes 5xx replies permanent.
func smtpError(err error, to string) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		// The reason is shown with the notification: the address it
		// often quotes is shown redacted, as everywhere else.
		msg := strings.TrimSpace(te.Msg)
		if to != "" {
			msg = strings.ReplaceAll(msg, to, images.RedactEmail(to))
		}
		return permanent("the mail server refused the message: %d %s", te.Code, msg)
	}
	return err
}
