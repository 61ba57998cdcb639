package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Store keeps sessions, tokens and login flows with a time to live. Keys
// are already hashes of the secrets (see sessions.go): a dump of the store
// holds no usable cookie or token.
type Store interface {
	// Put stores val under key for ttl.
	Put(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Get returns the value of key, nil when there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the value of key and deletes it, so that only one
	// caller ever gets it (one-use login flows).
	Take(ctx context.Context, key string) ([]byte, error)
	// Del deletes keys.
	Del(ctx context.Context, keys ...string) error
	// Link adds member to the set named set, which lives for ttl.
	Link(ctx context.Context, set, member string, ttl time.Duration) error
	// Members returns the members of set.
	Members(ctx context.Context, set string) ([]string, error)
}

// Memory is a Store in this process: for one replica.
type Memory struct {
	mu    sync.Mutex
	vals  map[string]memEntry
	sets  map[string]memSet
	puts  int
	clock func() time.Time
}

type memEntry struct {
	val     []byte
	expires time.Time
}

type memSet struct {
	members map[string]bool
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{vals: map[string]memEntry{}, sets: map[string]memSet{}, clock: time.Now}
}

func (m *Memory) Put(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	m.vals[key] = memEntry{val: append([]byte(nil), val...), expires: now.Add(ttl)}
	if m.puts++; m.puts%1024 == 0 {
		// Expired entries go now and then, so that the maps stay as
		// large as the live sessions.
		for k, e := range m.vals {
			if now.After(e.expires) {
				delete(m.vals, k)
			}
		}
		for k, s := range m.sets {
			if now.After(s.expires) {
				delete(m.sets, k)
			}
		}
	}
	return nil
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok || m.clock().After(e.expires) {
		return nil, nil
	}
	return e.val, nil
}

func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	delete(m.vals, key)
	if !ok || m.clock().After(e.expires) {
		return nil, nil
	}
	return e.val, nil
}

func (m *Memory) Del(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.vals, k)
		delete(m.sets, k)
	}
	return nil
}

func (m *Memory) Link(_ context.Context, set, member string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sets[set]
	if !ok {
		s = memSet{members: map[string]bool{}}
	}
	s.members[member] = true
	if exp := m.clock().Add(ttl); exp.After(s.expires) {
		s.expires = exp
	}
	m.sets[set] = s
	return nil
}

func (m *Memory) Members(_ context.Context, set string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.sets[set].members {
		out = append(out, k)
	}
	return out, nil
}

// Redis is a Store in Redis, shared by every replica that uses the same
// server and prefix: a session made on one replica is honoured by all.
type Redis struct {
	client *goredis.Client
	prefix string
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store in the Redis server at url
// (redis://HOST:PORT/DB), its keys starting with prefix. It does not
// contact the server.
func NewRedis(url, prefix string) (*Redis, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries = 1 // a login waits at most a few seconds on a sick server
	return &Redis{client: goredis.NewClient(opt), prefix: prefix}, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }

func (r *Redis) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.client.Set(ctx, r.prefix+key, val, ttl).Err()
}

func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	return b, err
}

func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.GetDel(ctx, r.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	return b, err
}

func (r *Redis) Del(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	return r.client.Del(ctx, full...).Err()
}

func (r *Redis) Link(ctx context.Context, set, member string, ttl time.Duration) error {
	_, err := r.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SAdd(ctx, r.prefix+set, member)
		p.Expire(ctx, r.prefix+set, ttl)
		return nil
	})
	return err
}

func (r *Redis) Members(ctx context.Context, set string) ([]string, error) {
	return r.client.SMembers(ctx, r.prefix+set).Result()
}
