/*
 * privseg: a header-only C++17 wrapper over the C API in privseg.h.
 *
 * RAII handles (no leaks, whatever throws), exceptions for failures
 * (privseg::Error carries the status, the rule broken, the line, the column
 * and the message), std::string_view for every string argument.
 *
 * Thread safety is that of the C API: Policy and Segment may be copied and
 * shared between threads (copies share one reference-counted object); an
 * Engine locks itself and may be used by several threads at once (only its
 * destruction must not race with a call on it).
 *
 * Every Engine call is made by the Engine's actor (an id the host has
 * authenticated, and role names from the policy) and recorded in its audit
 * log; a call the actor may not make throws an Error with the status
 * PRIVSEG_STATUS_ACCESS_DENIED.
 */
#ifndef PRIVSEG_HPP
#define PRIVSEG_HPP

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "privseg.h"

namespace privseg {

/* A failure of a privseg call. */
class Error : public std::runtime_error {
public:
    Error(privseg_status status, std::string message, std::string rule = {}, std::size_t line = 0,
          std::size_t column = 0)
        : std::runtime_error(message),
          status_(status),
          rule_(std::move(rule)),
          line_(line),
          column_(column) {}

    /* The status code, such as PRIVSEG_STATUS_SEGMENT_REFUSED. */
    privseg_status status() const noexcept { return status_; }
    /* The rule broken, such as "R2"; empty when none applies. */
    const std::string &rule() const noexcept { return rule_; }
    /* 1-based line and column of the offending text; 0 when unknown. */
    std::size_t line() const noexcept { return line_; }
    std::size_t column() const noexcept { return column_; }
    /* The message (with a caret under the offending text, for a segment). */
    std::string message() const { return what(); }

private:
    privseg_status status_;
    std::string rule_;
    std::size_t line_;
    std::size_t column_;
};

namespace detail {

/* Reads a text through a C function following the buffer convention:
 * fn(buf, len, &written). The first call gets a buffer of `initial` bytes
 * (none when 0); a second, with the size needed, follows only when the text
 * did not fit. Calls that are recorded in the audit log pass an `initial`
 * large enough for the usual text, so that they are made once. */
template <typename Fn>
privseg_status read_text(Fn &&fn, std::string &out, std::size_t initial = 0) {
    std::size_t need = 0;
    std::vector<char> first(initial);
    privseg_status st = fn(initial != 0 ? first.data() : nullptr, initial, &need);
    if (st != PRIVSEG_STATUS_BUFFER_TOO_SMALL) {
        if (st == PRIVSEG_STATUS_OK) {
            out.assign(first.data(), initial != 0 ? need : 0);
        }
        return st;
    }
    std::vector<char> buf(need + 1);
    std::size_t got = 0;
    st = fn(buf.data(), buf.size(), &got);
    if (st == PRIVSEG_STATUS_OK) {
        out.assign(buf.data(), got);
    }
    return st;
}

inline std::string last_error_message() {
    std::string msg;
    read_text([](char *b, std::size_t l, std::size_t *w) { return privseg_last_error_message(b, l, w); },
              msg);
    return msg;
}

/* Throws an Error for a failed status, with the thread's last message. */
inline void check(privseg_status st) {
    if (st != PRIVSEG_STATUS_OK) {
        throw Error(st, last_error_message());
    }
}

/* Throws an Error made from an error object (freed here), or from the last
 * message when there is none. */
[[noreturn]] inline void throw_error(privseg_status st, privseg_error *err) {
    if (err == nullptr) {
        throw Error(st, last_error_message());
    }
    std::string message, rule;
    read_text([err](char *b, std::size_t l, std::size_t *w) { return privseg_error_message(err, b, l, w); },
              message);
    read_text([err](char *b, std::size_t l, std::size_t *w) { return privseg_error_rule(err, b, l, w); },
              rule);
    std::size_t line = privseg_error_line(err);
    std::size_t column = privseg_error_column(err);
    privseg_error_free(err);
    throw Error(st, std::move(message), std::move(rule), line, column);
}

inline privseg_str to_str(std::string_view s) {
    privseg_str r;
    r.ptr = s.data();
    r.len = s.size();
    return r;
}

inline std::vector<privseg_str> to_strs(const std::vector<std::string_view> &list) {
    std::vector<privseg_str> out;
    out.reserve(list.size());
    for (std::string_view s : list) {
        out.push_back(to_str(s));
    }
    return out;
}

/* Takes the whole contents of a privseg_buffer (an export, member ids) and
 * frees it. Reading a buffer runs and records nothing. */
inline std::string take_buffer(privseg_buffer *b) {
    struct Free {
        privseg_buffer *b;
        ~Free() { privseg_buffer_free(b); }
    } guard{b};
    std::size_t need = 0;
    check(privseg_buffer_len(b, &need));
    std::string out(need + 1, '\0');
    std::size_t got = 0;
    check(privseg_buffer_copy(b, &out[0], out.size(), &got));
    out.resize(got);
    return out;
}

/* The first buffer size of an audited call that returns text. */
constexpr std::size_t kAuditedBuffer = 16384;

/* An optional string: empty means absent (a NULL pointer). */
inline privseg_str to_opt_str(std::string_view s) {
    privseg_str r;
    r.ptr = s.empty() ? nullptr : s.data();
    r.len = s.size();
    return r;
}

}  // namespace detail

/* Parses an RFC 3339 time into the Unix seconds every time argument takes. */
inline std::int64_t parse_time(std::string_view text) {
    std::int64_t t = 0;
    detail::check(privseg_time_parse(text.data(), text.size(), &t));
    return t;
}

/* The library's version, such as "0.1.0". */
inline std::string version() { return privseg_version(); }

/* A validated, immutable policy; copies share it. */
/* A decoded consent signal (TCF TC string, GPP string or US Privacy
 * string), read field by field; immutable, movable, not copyable. */
class Signal {
public:
    /* Decodes a signal (leniently, as privseg_signal_decode); throws an
     * Error with PRIVSEG_STATUS_SIGNAL_INVALID for a string that does not
     * decode. */
    static Signal decode(std::string_view text) {
        privseg_signal *s = nullptr;
        detail::check(privseg_signal_decode_handle(text.data(), text.size(), &s));
        return Signal(s);
    }
    Signal(Signal &&other) noexcept : s_(other.s_) { other.s_ = nullptr; }
    Signal &operator=(Signal &&other) noexcept {
        if (this != &other) {
            privseg_signal_free(s_);
            s_ = other.s_;
            other.s_ = nullptr;
        }
        return *this;
    }
    Signal(const Signal &) = delete;
    Signal &operator=(const Signal &) = delete;
    ~Signal() { privseg_signal_free(s_); }

    /* PRIVSEG_SIGNAL_TCF, PRIVSEG_SIGNAL_GPP or PRIVSEG_SIGNAL_USP. */
    std::uint32_t format() const {
        std::uint32_t f = 0;
        detail::check(privseg_signal_format(s_, &f));
        return f;
    }
    /* The whole signal's JSON. */
    std::string json() const {
        std::string out;
        detail::check(detail::read_text(
            [&](char *b, std::size_t l, std::size_t *w) { return privseg_signal_json(s_, b, l, w); }, out));
        return out;
    }
    /* A TCF id list (a privseg_tcf_list), ascending; throws an Error with
     * PRIVSEG_STATUS_SIGNAL_ABSENT when the signal has no TCF fields. */
    std::vector<std::uint16_t> tcf_ids(std::uint32_t list) const {
        return ids([&](std::uint16_t *p, std::size_t cap, std::size_t *n) {
            return privseg_signal_tcf_ids(s_, list, p, cap, n);
        });
    }
    /* A GPP string's section ids, ascending. */
    std::vector<std::uint16_t> gpp_section_ids() const {
        return ids([&](std::uint16_t *p, std::size_t cap, std::size_t *n) {
            return privseg_signal_gpp_section_ids(s_, p, cap, n);
        });
    }
    /* One GPP section's JSON. */
    std::string gpp_section(std::uint16_t id) const {
        std::string out;
        detail::check(detail::read_text(
            [&](char *b, std::size_t l, std::size_t *w) { return privseg_signal_gpp_section(s_, id, b, l, w); },
            out));
        return out;
    }
    /* The US Privacy fields (of a US Privacy string or a uspv1 section). */
    privseg_usp usp() const {
        privseg_usp u{};
        detail::check(privseg_signal_usp(s_, &u));
        return u;
    }
    const privseg_signal *get() const noexcept { return s_; }

private:
    explicit Signal(privseg_signal *s) : s_(s) {}

    template <typename Fn>
    static std::vector<std::uint16_t> ids(Fn &&fn) {
        std::size_t n = 0;
        privseg_status st = fn(nullptr, 0, &n);
        std::vector<std::uint16_t> out;
        if (st == PRIVSEG_STATUS_OK) {
            return out;
        }
        if (st != PRIVSEG_STATUS_BUFFER_TOO_SMALL) {
            detail::check(st);
        }
        out.resize(n);
        detail::check(fn(out.data(), out.size(), &n));
        out.resize(n);
        return out;
    }

    privseg_signal *s_;
};

class Policy {
public:
    static Policy from_json(std::string_view json) {
        const privseg_policy *p = nullptr;
        privseg_error *err = nullptr;
        privseg_status st = privseg_policy_from_json(json.data(), json.size(), &p, &err);
        if (st != PRIVSEG_STATUS_OK) {
            detail::throw_error(st, err);
        }
        return Policy(p);
    }

    Policy(const Policy &o) : p_(privseg_policy_clone(o.p_)) {}
    Policy(Policy &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Policy &operator=(Policy o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~Policy() { privseg_policy_free(p_); }

    /* 64 hex digits: the SHA-256 of the canonical JSON. */
    std::string version() const {
        std::string v;
        detail::check(detail::read_text(
            [this](char *b, std::size_t l, std::size_t *w) { return privseg_policy_version(p_, b, l, w); }, v));
        return v;
    }

    const privseg_policy *get() const noexcept { return p_; }

private:
    explicit Policy(const privseg_policy *p) : p_(p) {}
    const privseg_policy *p_;
};

/* A segment validated against a policy; copies share it. */
class Segment {
public:
    /* Parses the text form and validates it; throws an Error with the rule,
     * line, column and caret message when it is refused. */
    static Segment compile(const Policy &policy, std::string_view text) {
        const privseg_segment *s = nullptr;
        privseg_error *err = nullptr;
        privseg_status st = privseg_segment_compile(policy.get(), text.data(), text.size(), &s, &err);
        if (st != PRIVSEG_STATUS_OK) {
            detail::throw_error(st, err);
        }
        return Segment(s);
    }

    /* Parses the JSON form and validates it. */
    static Segment from_json(const Policy &policy, std::string_view json) {
        const privseg_segment *s = nullptr;
        privseg_error *err = nullptr;
        privseg_status st = privseg_segment_from_json(policy.get(), json.data(), json.size(), &s, &err);
        if (st != PRIVSEG_STATUS_OK) {
            detail::throw_error(st, err);
        }
        return Segment(s);
    }

    Segment(const Segment &o) : s_(privseg_segment_clone(o.s_)) {}
    Segment(Segment &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Segment &operator=(Segment o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~Segment() { privseg_segment_free(s_); }

    std::string name() const {
        std::string n;
        detail::check(detail::read_text(
            [this](char *b, std::size_t l, std::size_t *w) { return privseg_segment_name(s_, b, l, w); }, n));
        return n;
    }

    const privseg_segment *get() const noexcept { return s_; }

private:
    friend class Engine;
    explicit Segment(const privseg_segment *s) : s_(s) {}
    const privseg_segment *s_;
};

class Engine;

/* The members of a segment at an instant. Move-only. */
class Members {
public:
    Members(Members &&o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    Members &operator=(Members &&o) noexcept {
        std::swap(m_, o.m_);
        return *this;
    }
    Members(const Members &) = delete;
    Members &operator=(const Members &) = delete;
    ~Members() { privseg_members_free(m_); }

    std::uint64_t count() const {
        std::uint64_t n = 0;
        detail::check(privseg_members_count(m_, &n));
        return n;
    }

    /* The member ids, in the order subjects were added; `engine` is the one
     * that produced these members. */
    inline std::vector<std::string> ids(const Engine &engine) const;

    const privseg_members *get() const noexcept { return m_; }

private:
    friend class Engine;
    explicit Members(privseg_members *m) : m_(m) {}
    privseg_members *m_;
};

/* A count under the policy's k-threshold: when below_k is true the count
 * is withheld, and value is k ("fewer than value"). */
struct Count {
    std::uint64_t value;
    bool below_k;
};

/* One policy, its subjects and its audit log, used by one actor at a time.
 * Move-only; not for two threads at once. */
class Engine {
public:
    /* An engine whose calls are made by the actor `actor_id` with these
     * roles. The host is responsible for authenticating the actor. */
    Engine(const Policy &policy, std::string_view actor_id, const std::vector<std::string_view> &roles)
        : e_(nullptr) {
        std::vector<privseg_str> r = detail::to_strs(roles);
        detail::check(privseg_engine_new(policy.get(), actor_id.data(), actor_id.size(), r.data(), r.size(), &e_));
    }
    Engine(Engine &&o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
    Engine &operator=(Engine &&o) noexcept {
        std::swap(e_, o.e_);
        return *this;
    }
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;
    ~Engine() { privseg_engine_free(e_); }

    /* Makes later calls as another actor (authenticated by the host). */
    void set_actor(std::string_view actor_id, const std::vector<std::string_view> &roles) {
        std::vector<privseg_str> r = detail::to_strs(roles);
        detail::check(privseg_engine_set_actor(e_, actor_id.data(), actor_id.size(), r.data(), r.size()));
    }

    /* Compiles a segment against the engine's policy, as the actor (the
     * validation or refusal is recorded); throws as Segment::compile does. */
    Segment compile(std::string_view text) const {
        const privseg_segment *s = nullptr;
        privseg_error *err = nullptr;
        privseg_status st = privseg_engine_compile(e_, text.data(), text.size(), &s, &err);
        if (st != PRIVSEG_STATUS_OK) {
            detail::throw_error(st, err);
        }
        return Segment(s);
    }

    /* Adds a subject; an empty birth date means unknown. */
    void add_subject(std::string_view id, std::string_view jurisdiction, std::string_view birth_date = {}) {
        detail::check(privseg_engine_add_subject(e_, id.data(), id.size(), jurisdiction.data(),
                                                 jurisdiction.size(),
                                                 birth_date.empty() ? nullptr : birth_date.data(),
                                                 birth_date.size()));
    }

    /* Imports new subjects with their values, and events, in one step, all
     * or nothing (privseg_engine_import). */
    void bulk_import(const std::vector<privseg_subject> &subjects,
                     const std::vector<privseg_attribute_update> &values, const std::vector<privseg_event> &events) {
        detail::check(privseg_engine_import(e_, subjects.data(), subjects.size(), values.data(), values.size(),
                                            events.data(), events.size()));
    }

    /* Adds subjects, all or nothing. */
    void add_subjects(const std::vector<privseg_subject> &subjects) {
        detail::check(privseg_engine_add_subjects(e_, subjects.data(), subjects.size()));
    }

    void set_string(std::string_view subject, std::string_view attribute, std::string_view value,
                    std::int64_t verified_at) {
        privseg_value v{};
        v.kind = PRIVSEG_VALUE_KIND_STRING;
        v.text = detail::to_str(value);
        set(subject, attribute, v, verified_at);
    }

    void set_integer(std::string_view subject, std::string_view attribute, std::int64_t value,
                     std::int64_t verified_at) {
        privseg_value v{};
        v.kind = PRIVSEG_VALUE_KIND_INTEGER;
        v.integer = value;
        set(subject, attribute, v, verified_at);
    }

    void set_boolean(std::string_view subject, std::string_view attribute, bool value,
                     std::int64_t verified_at) {
        privseg_value v{};
        v.kind = PRIVSEG_VALUE_KIND_BOOLEAN;
        v.integer = value ? 1 : 0;
        set(subject, attribute, v, verified_at);
    }

    /* Sets attribute values, all or nothing. */
    void set_attributes(const std::vector<privseg_attribute_update> &updates) {
        detail::check(privseg_engine_set_attributes(e_, updates.data(), updates.size()));
    }

    void clear_attribute(std::string_view subject, std::string_view attribute) {
        detail::check(privseg_engine_clear_attribute(e_, subject.data(), subject.size(), attribute.data(),
                                                     attribute.size()));
    }

    void record(const privseg_event &event) { detail::check(privseg_engine_record(e_, &event)); }

    /* Records events, all or nothing. */
    void record(const std::vector<privseg_event> &events) {
        detail::check(privseg_engine_record_batch(e_, events.data(), events.size()));
    }

    /* Records an event in its JSON form. */
    void record_json(std::string_view json) {
        detail::check(privseg_engine_record_json(e_, json.data(), json.size()));
    }

    /* Records a consent grant, with the notice version and its SHA-256. */
    void grant(std::string_view subject, std::string_view purpose, std::int64_t at, std::string_view notice,
               std::string_view notice_sha256, std::string_view channel = "api",
               std::string_view collector = "privseg") {
        privseg_event e = event(subject, PRIVSEG_EVENT_KIND_CONSENT_GRANTED, purpose, at, channel, collector);
        e.notice_version = detail::to_str(notice);
        e.notice_sha256 = detail::to_str(notice_sha256);
        record(e);
    }

    /* Records the withdrawal of a consent. */
    void withdraw(std::string_view subject, std::string_view purpose, std::int64_t at,
                  std::string_view channel = "api", std::string_view collector = "privseg") {
        record(event(subject, PRIVSEG_EVENT_KIND_CONSENT_WITHDRAWN, purpose, at, channel, collector));
    }

    void erase(std::string_view id) { detail::check(privseg_engine_erase(e_, id.data(), id.size())); }

    std::size_t subject_count() const {
        std::size_t n = 0;
        detail::check(privseg_engine_subject_count(e_, &n));
        return n;
    }

    Members evaluate(const Segment &segment, std::int64_t at) const {
        privseg_members *m = nullptr;
        detail::check(privseg_engine_evaluate(e_, segment.get(), at, &m));
        return Members(m);
    }

    /* Why a subject is in or out of a segment, as JSON. */
    std::string explain(const Segment &segment, std::string_view id, std::int64_t at) const {
        std::string json;
        detail::check(detail::read_text(
            [&](char *b, std::size_t l, std::size_t *w) {
                return privseg_engine_explain(e_, segment.get(), id.data(), id.size(), at, b, l, w);
            },
            json, detail::kAuditedBuffer));
        return json;
    }

    /* The number of members under the policy's k-threshold. */
    Count count(const Segment &segment, std::int64_t at) const {
        std::uint64_t n = 0;
        std::uint32_t below = 0;
        detail::check(privseg_engine_count(e_, segment.get(), at, &n, &below));
        return Count{n, below != 0};
    }

    /* Members per value of a categorical attribute, small cells withheld,
     * as JSON (see privseg_engine_breakdown). */
    std::string breakdown(const Segment &segment, std::int64_t at, std::string_view attribute) const {
        std::string json;
        detail::check(detail::read_text(
            [&](char *b, std::size_t l, std::size_t *w) {
                return privseg_engine_breakdown(e_, segment.get(), at, attribute.data(), attribute.size(), b, l,
                                                w);
            },
            json, detail::kAuditedBuffer));
        return json;
    }

    /* Exports the members to a recipient, ids pseudonymised under the key of
     * `key_version` derived from `master_secret` (at least 32 bytes), with
     * these fields, in a privseg_export_format. One recorded export, read
     * out of its buffer whatever its size. */
    std::string export_to(const Segment &segment, std::int64_t at, std::string_view recipient,
                          const std::vector<std::string_view> &fields, std::uint32_t format,
                          std::string_view master_secret, std::uint32_t key_version) const {
        std::vector<privseg_str> f = detail::to_strs(fields);
        const unsigned char *secret = reinterpret_cast<const unsigned char *>(master_secret.data());
        privseg_buffer *b = nullptr;
        detail::check(privseg_engine_export(e_, segment.get(), at, recipient.data(), recipient.size(), f.data(),
                                            f.size(), format, secret, master_secret.size(), key_version, &b));
        return detail::take_buffer(b);
    }

    /* The subject access report, with membership in `segments`, as JSON. */
    std::string subject_report(std::string_view id, const std::vector<Segment> &segments, std::int64_t at) const {
        std::vector<const privseg_segment *> s;
        s.reserve(segments.size());
        for (const Segment &seg : segments) {
            s.push_back(seg.get());
        }
        std::string json;
        detail::check(detail::read_text(
            [&](char *b, std::size_t l, std::size_t *w) {
                return privseg_engine_subject_report(e_, id.data(), id.size(), s.data(), s.size(), at, b, l, w);
            },
            json, detail::kAuditedBuffer));
        return json;
    }

    /* The number of entries in the audit log. */
    std::uint64_t audit_len() const {
        std::uint64_t n = 0;
        detail::check(privseg_engine_audit_len(e_, &n));
        return n;
    }

    const privseg_engine *get() const noexcept { return e_; }

private:
    void set(std::string_view subject, std::string_view attribute, const privseg_value &v,
             std::int64_t verified_at) {
        detail::check(privseg_engine_set_attribute(e_, subject.data(), subject.size(), attribute.data(),
                                                   attribute.size(), &v, verified_at));
    }

    static privseg_event event(std::string_view subject, std::uint32_t kind, std::string_view purpose,
                               std::int64_t at, std::string_view channel, std::string_view collector) {
        privseg_event e{};
        e.subject = detail::to_str(subject);
        e.kind = kind;
        e.purpose = detail::to_opt_str(purpose);
        e.at = at;
        e.channel = detail::to_opt_str(channel);
        e.collector = detail::to_opt_str(collector);
        return e;
    }

    privseg_engine *e_;
};

inline std::vector<std::string> Members::ids(const Engine &engine) const {
    std::vector<std::string> out;
    privseg_buffer *b = nullptr;
    detail::check(privseg_members_ids(m_, engine.get(), &b));
    std::string buf = detail::take_buffer(b);
    for (std::size_t at = 0; at < buf.size();) {
        std::size_t end = buf.find('\0', at);
        out.emplace_back(buf, at, end - at);
        at = end + 1;
    }
    return out;
}

}  // namespace privseg

#endif /* PRIVSEG_HPP */
