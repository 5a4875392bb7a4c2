// ThreadSanitizer builds only (SHARDWIRE_TSAN=ON, `make tsan`): makes the
// hand-offs that Debian's uninstrumented libcaf_core.so orders with its own
// atomics visible to TSan.
//
// How: this file is linked into every executable of a TSan build
// (cmake/shardwire_helpers.cmake) and defines, under their mangled names,
// the few exported functions of libcaf_core.so 0.17.6 in which CAF orders a
// hand-off between threads. An executable's definitions come first in the
// dynamic linker's lookup order, and libcaf_core.so is linked without
// -Bsymbolic: every call it makes to these functions, from inside itself or
// from libcaf_io.so, goes through its PLT (`objdump -d`: no direct call to
// any of them), and its vtables name them through R_X86_64_64 relocations
// against the symbol (`readelf -r`). So each call, whoever makes it, lands
// here. Each wrapper tells TSan what the atomic inside does
// (__tsan_release / __tsan_acquire on a fixed address, the same address an
// instrumented build would use where there is one) and then calls the real
// function, found with dlsym(RTLD_NEXT, <mangled name>).
//
// Nothing here changes what CAF does: only what TSan knows. Nothing here is
// compiled outside TSan builds. The argument and return types are those of
// the Itanium C++ ABI on x86-64: `this` is the first argument, a
// std::unique_ptr<mailbox_element, disposer> passed by value is passed as a
// pointer to it (it is not trivially copyable) and returned through a
// hidden pointer (first argument, returned in rax again); the object holds
// just the element's address. The layouts used (the counters of
// actor_control_block and ref_counted, the offset of scheduled_actor's
// `resumable` base) are those of CAF 0.17.6, checked at startup against the
// disassembly facts they come from (see expect_code below).
//
// What is modelled, and why each annotation is exact:
//
//  1. Reference counts. CAF drops a reference with fetch_sub(acq_rel) (or a
//     plain load that sees 1, i.e. the last reference) and destroys the
//     object on the thread that dropped the last one. An acq_rel RMW on a
//     counter synchronises with every earlier RMW on it (release sequence),
//     so each drop is: acquire + release on the counter's address. An
//     instrumented CAF would make TSan do exactly this. The counter's own
//     address is used, so the inline relaxed increments and `unique()` loads
//     that shardwire's instrumented code performs on the same counter join
//     the same sync variable. The wrapper runs before the real drop, so
//     the deletion itself acquires the counter once more where the count
//     is known to be zero (request_deletion for ref_counted objects,
//     on_destroy and the block destructor for actors: sections 1 and 1b).
//
//  2. Mailboxes. A sender pushes a mailbox element with a CAS (release) and
//     the receiving actor takes it with an exchange (acquire): whatever the
//     sender wrote before enqueue (the message, buffers it owns) happens
//     before the handler. Modelled per element: release on the element at
//     enqueue (scheduled and blocking actors), acquire on it when CAF hands
//     it to the actor (reactivate for scheduled actors, the receive visitor
//     and dequeue for blocking actors, i.e. scoped_actor). Elements a
//     terminating actor never sees are destroyed when CAF closes the
//     mailbox (cleanup): every enqueue also releases the mailbox as a whole,
//     and cleanup acquires it, as the close's exchange does; the visitor
//     that drains the closed mailbox acquires each element, for pushes that
//     race with the close.
//
//  3. Scheduling. An actor's turns (resume) may run on different threads
//     (CAF's workers; the spawning thread then the runner for the first
//     one). CAF orders turn n before turn n+1 through the mailbox's blocked
//     flag (CAS) and its job queues. Modelled per actor: release on the
//     actor at launch, after each message (so before the turn can block its
//     mailbox) and at the end of each turn; acquire at the start of a turn.
//     Consecutive turns of ONE actor are ordered; turns of different actors
//     are not, so a race between two actors (tsan_canary_test) stays
//     visible.
//
//  4. Node identities (remote nodes only): release on a node_id's data
//     block when node_id::deserialize made it, acquire before
//     node_id::compare / serialize read it (see section 4 below).

#if !defined(__SANITIZE_THREAD__)
#error "caf_tsan_shim.cpp belongs in ThreadSanitizer builds only"
#endif

#include <caf/config.hpp>
#include <sanitizer/tsan_interface.h>

#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace {

void* real_symbol(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "caf_tsan_shim: %s not found after the executable "
                         "(not CAF 0.17.6?): %s\n", mangled, dlerror());
    std::abort();
  }
  return fn;
}

// The real function behind `mangled`, looked up once (thread-safe static).
#define SW_REAL(type, mangled)                                                 \
  static const auto real = reinterpret_cast<type>(real_symbol(mangled))

// Where a wrapper relies on a layout of CAF 0.17.6 (an offset below), it
// first checks that the real function starts with the instructions that
// layout comes from, so another CAF build fails loudly instead of being
// annotated at the wrong address.
bool expect_code(const void* fn, const unsigned char* bytes, std::size_t n,
                 const char* what) {
  auto* code = static_cast<const unsigned char*>(fn);
  for (std::size_t i = 0; i < n; ++i) {
    if (code[i] != bytes[i]) {
      std::fprintf(stderr, "caf_tsan_shim: %s does not start as in CAF 0.17.6"
                           "; update the layout constants\n", what);
      std::abort();
    }
  }
  return true;
}

#define SW_EXPECT(what, ...)                                                   \
  do {                                                                         \
    static const unsigned char bytes[] = {__VA_ARGS__};                        \
    static const bool checked [[maybe_unused]] =                               \
        expect_code(reinterpret_cast<const void*>(real), bytes, sizeof bytes,  \
                    what);                                                     \
  } while (false)

void acq_rel(const void* addr) {
  __tsan_acquire(const_cast<void*>(addr));
  __tsan_release(const_cast<void*>(addr));
}

const char* add(const void* p, std::ptrdiff_t n) {
  return static_cast<const char*>(p) + n;
}

// CAF 0.17.6 layouts (libcaf_core.so disassembly):
// actor_control_block { atomic strong_refs; atomic weak_refs; ... }:
// intrusive_ptr_release does `lock subq $1,(%rdi)`, release_weak
// `lock subq $1,0x8(%rdi)`.
constexpr std::ptrdiff_t acb_weak_refs = 8;
// ... aid; nid; home_system; data_dtor; block_dtor }: release_weak ends in
// `jmp *0x30(%rdi)`.
constexpr std::ptrdiff_t acb_block_dtor = 48;
// ref_counted { vptr; atomic rc_; }: deref does `lock subq $1,0x8(%rdi)`.
constexpr std::ptrdiff_t ref_counted_rc = 8;
// actor_storage<T> { actor_control_block ctrl; char pad[...]; T data; }:
// the actor starts CAF_CACHE_LINE_SIZE (64, caf/config.hpp) after its
// control block (actor_control_block::from, a static_assert in
// actor_storage.hpp).
constexpr std::ptrdiff_t actor_data_offset = CAF_CACHE_LINE_SIZE;
// scheduled_actor's `resumable` base: the thunk
// _ZThn160_N3caf15scheduled_actor6resume... does `sub $0xa0,%rdi`.
constexpr std::ptrdiff_t scheduled_actor_resumable = 160;

// The sync address standing for "this actor's turns": the actor object
// itself (its first word is a vptr, never an atomic).
const void* actor_turns(const void* self) {
  return self;
}

// The sync address standing for "this actor's mailbox as a whole": one byte
// into the actor object (inside its vptr, so no real variable's address;
// TSan keys sync variables by exact address, so it is distinct from
// actor_turns).
const void* mailbox_of(const void* self) {
  return static_cast<const char*>(self) + 1;
}

// The mailbox element held by a std::unique_ptr<mailbox_element, disposer>.
const void* element_of(void* const* unique_ptr) {
  return *unique_ptr;
}

} // namespace

// ---- 1. reference counts ---------------------------------------------------

// void caf::ref_counted::deref() const noexcept: message payloads
// (message_data), and every other ref_counted CAF object.
extern "C++" void sw_ref_counted_deref(const void* self) noexcept
    __asm__("_ZNK3caf11ref_counted5derefEv");
void sw_ref_counted_deref(const void* self) noexcept {
  SW_REAL(void (*)(const void*), "_ZNK3caf11ref_counted5derefEv");
  SW_EXPECT("ref_counted::deref", 0x48, 0x8d, 0x47, 0x08); // lea 0x8(%rdi),%rax
  acq_rel(add(self, ref_counted_rc));
  real(self);
}

// void caf::memory_managed::request_deletion(bool) const noexcept: what
// ref_counted::deref calls (through the vtable's first slot) once the count
// is zero, to delete the object. The acquire in deref above comes BEFORE
// the real decrement (see 1b for why it cannot come after), so when two
// owners drop a message at about the same time, the one that turns out to
// be last may have acquired before the other released, and the payload's
// destruction (a string in an error's context, freed on a shard while the
// thread that read it had just let go) looks unordered. Here the count is
// known to be zero: acquire it again, so every owner's release comes first.
// For memory_managed objects that are not ref_counted (mailbox elements),
// the address is an unrelated field nobody releases: no ordering added.
extern "C++" void sw_request_deletion(const void* self,
                                      bool decremented) noexcept
    __asm__("_ZNK3caf14memory_managed16request_deletionEb");
void sw_request_deletion(const void* self, bool decremented) noexcept {
  SW_REAL(void (*)(const void*, bool),
          "_ZNK3caf14memory_managed16request_deletionEb");
  // push %rbp; mov (%rdi),%rax: deletes `self` through its own vtable.
  SW_EXPECT("memory_managed::request_deletion", 0x55, 0x48, 0x8b, 0x07);
  __tsan_acquire(const_cast<char*>(add(self, ref_counted_rc)));
  real(self, decremented);
}

// void caf::intrusive_ptr_release(caf::actor_control_block*): strong
// references to actors (the last one runs the actor's destructor).
extern "C++" void sw_release_actor(void* ctrl) noexcept
    __asm__("_ZN3caf21intrusive_ptr_releaseEPNS_19actor_control_blockE");
void sw_release_actor(void* ctrl) noexcept {
  SW_REAL(void (*)(void*),
          "_ZN3caf21intrusive_ptr_releaseEPNS_19actor_control_blockE");
  // lock subq $1,(%rdi)
  SW_EXPECT("intrusive_ptr_release", 0xf0, 0x48, 0x83, 0x2f, 0x01);
  acq_rel(ctrl);
  // The last strong reference also drops the weak one the strong ones
  // share, inside libcaf (not through the PLT, so the wrapper below does not
  // see it): release the weak count too, so that the thread dropping the
  // last weak reference (which frees the actor's memory) is ordered after
  // this one. An over-approximation for strong releases that are not the
  // last, which only add ordering through the same control block.
  __tsan_release(const_cast<char*>(add(ctrl, acb_weak_refs)));
  real(ctrl);
}

// void caf::intrusive_ptr_release_weak(caf::actor_control_block*): weak
// references (the last one frees the control block and the actor's memory,
// through the block's block_dtor; see end_of_block below for its acquire).
extern "C++" void sw_release_actor_weak(void* ctrl) noexcept
    __asm__("_ZN3caf26intrusive_ptr_release_weakEPNS_19actor_control_blockE");
void sw_release_actor_weak(void* ctrl) noexcept {
  SW_REAL(void (*)(void*),
          "_ZN3caf26intrusive_ptr_release_weakEPNS_19actor_control_blockE");
  // lea 0x8(%rdi),%rax; mov 0x8(%rdi),%rdx; cmp $1,%rdx; jne +10;
  // jmp *0x30(%rdi): the weak count at 8, block_dtor at 48.
  SW_EXPECT("intrusive_ptr_release_weak", 0x48, 0x8d, 0x47, 0x08, 0x48, 0x8b,
            0x57, 0x08, 0x48, 0x83, 0xfa, 0x01, 0x75, 0x0a, 0xff, 0x67, 0x30);
  acq_rel(add(ctrl, acb_weak_refs));
  real(ctrl);
}

// ---- 1b. the end of an actor's life -----------------------------------------
//
// The wrappers above annotate BEFORE the real decrement: after it, the last
// one may already have freed the block, and TSan forgets the sync variables
// of freed memory. So when two owners drop their references at about the
// same time, the one that turns out to be last may have done its acquire
// before the other's release. The destruction itself is therefore ordered
// at the two points where the count is known to be zero:
//  * the object: local_actor::on_destroy, which CAF's actor_storage runs
//    (then the destructor) once the strong count is zero, acquires the
//    control block (every strong owner released it before its decrement);
//  * the memory: the block's block_dtor, which CAF calls once the weak count
//    is zero, from inside libcaf (not through the PLT). on_destroy swaps the
//    block's block_dtor for end_of_block, which acquires the weak count and
//    calls the original; the destructor's writes are released on the weak
//    count when abstract_actor's destructor (the last of the chain) returns,
//    before CAF drops the weak reference the strong ones shared.

namespace {

using block_destructor = void (*)(void*);

// actor_control_block::from(): the block sits one cache line before the
// actor in CAF's actor_storage.
char* control_block_of(void* self) {
  return static_cast<char*>(self) - actor_data_offset;
}

// Original block destructors of actors being destroyed, by control block.
std::mutex& blocks_mutex() {
  static std::mutex m;
  return m;
}

std::unordered_map<void*, block_destructor>& original_blocks() {
  static std::unordered_map<void*, block_destructor> map;
  return map;
}

block_destructor* block_dtor_slot(void* ctrl) {
  return reinterpret_cast<block_destructor*>(static_cast<char*>(ctrl) +
                                             acb_block_dtor);
}

void end_of_block(void* ctrl) {
  __tsan_acquire(const_cast<char*>(add(ctrl, acb_weak_refs)));
  block_destructor original = nullptr;
  {
    std::lock_guard<std::mutex> guard{blocks_mutex()};
    auto i = original_blocks().find(ctrl);
    original = i->second;
    original_blocks().erase(i);
  }
  original(ctrl);
}

// After an actor's destructor chain: its writes are released on the weak
// count, which end_of_block acquires before the memory goes.
void release_destroyed(void* self) {
  __tsan_release(control_block_of(self) + acb_weak_refs);
}

} // namespace

// void caf::local_actor::on_destroy(): every local actor (scheduled,
// blocking, shardwire's pinned ones) gets here: their vtables name this
// symbol and none of them overrides it without calling it.
extern "C++" void sw_local_on_destroy(void* self) noexcept
    __asm__("_ZN3caf11local_actor10on_destroyEv");
void sw_local_on_destroy(void* self) noexcept {
  SW_REAL(void (*)(void*), "_ZN3caf11local_actor10on_destroyEv");
  char* ctrl = control_block_of(self);
  __tsan_acquire(ctrl);
  // Every turn holds a reference: none can still run.
  __tsan_acquire(const_cast<void*>(actor_turns(self)));
  block_destructor* slot = block_dtor_slot(ctrl);
  if (*slot != &end_of_block) {
    std::lock_guard<std::mutex> guard{blocks_mutex()};
    original_blocks()[ctrl] = *slot;
    *slot = &end_of_block;
  }
  real(self);
}

// caf::abstract_actor::~abstract_actor() (base-object and complete-object
// destructors, one function in libcaf): the last destructor of every
// actor's chain, called through the PLT by the destructors above it.
extern "C++" void sw_abstract_actor_dtor2(void* self) noexcept
    __asm__("_ZN3caf14abstract_actorD2Ev");
void sw_abstract_actor_dtor2(void* self) noexcept {
  SW_REAL(void (*)(void*), "_ZN3caf14abstract_actorD2Ev");
  real(self);
  release_destroyed(self);
}

extern "C++" void sw_abstract_actor_dtor1(void* self) noexcept
    __asm__("_ZN3caf14abstract_actorD1Ev");
void sw_abstract_actor_dtor1(void* self) noexcept {
  SW_REAL(void (*)(void*), "_ZN3caf14abstract_actorD1Ev");
  real(self);
  release_destroyed(self);
}

// ---- 2. mailboxes ----------------------------------------------------------

namespace {
// The sync address of all blocking actors' inboxes (see fetch_more below).
char blocking_inboxes;
} // namespace

// void caf::scheduled_actor::enqueue(mailbox_element_ptr, execution_unit*)
extern "C++" void sw_scheduled_enqueue(void* self, void** elem, void* eu)
    __asm__("_ZN3caf15scheduled_actor7enqueueESt10unique_ptrINS_15mailbox_"
            "elementENS_6detail8disposerEEPNS_14execution_unitE");
void sw_scheduled_enqueue(void* self, void** elem, void* eu) {
  SW_REAL(void (*)(void*, void**, void*),
          "_ZN3caf15scheduled_actor7enqueueESt10unique_ptrINS_15mailbox_"
          "elementENS_6detail8disposerEEPNS_14execution_unitE");
  __tsan_release(const_cast<void*>(element_of(elem)));
  __tsan_release(const_cast<void*>(mailbox_of(self)));
  real(self, elem, eu);
}

// void caf::blocking_actor::enqueue(mailbox_element_ptr, execution_unit*):
// scoped_actor and other blocking actors.
extern "C++" void sw_blocking_enqueue(void* self, void** elem, void* eu)
    __asm__("_ZN3caf14blocking_actor7enqueueESt10unique_ptrINS_15mailbox_"
            "elementENS_6detail8disposerEEPNS_14execution_unitE");
void sw_blocking_enqueue(void* self, void** elem, void* eu) {
  SW_REAL(void (*)(void*, void**, void*),
          "_ZN3caf14blocking_actor7enqueueESt10unique_ptrINS_15mailbox_"
          "elementENS_6detail8disposerEEPNS_14execution_unitE");
  __tsan_release(const_cast<void*>(element_of(elem)));
  __tsan_release(const_cast<void*>(mailbox_of(self)));
  __tsan_release(&blocking_inboxes); // see fetch_more below
  real(self, elem, eu);
}

// activation_result caf::scheduled_actor::reactivate(mailbox_element&): how
// a turn hands each element of the mailbox to the actor (consume, the
// behavior, the handler). Acquire the element; afterwards release the
// actor's turns (see 3: the turn may block the mailbox right after this,
// and the next turn may then start on another thread).
extern "C++" int sw_scheduled_reactivate(void* self, void* elem)
    __asm__("_ZN3caf15scheduled_actor10reactivateERNS_15mailbox_elementE");
int sw_scheduled_reactivate(void* self, void* elem) {
  SW_REAL(int (*)(void*, void*),
          "_ZN3caf15scheduled_actor10reactivateERNS_15mailbox_elementE");
  __tsan_acquire(elem);
  int result = real(self, elem);
  __tsan_release(const_cast<void*>(actor_turns(self)));
  return result;
}

// invoke_message_result caf::scheduled_actor::mailbox_visitor::operator()(
// mailbox_element&): a turn (resume) handing each element to the actor,
// system messages (exit_msg, down_msg, ...) included, which never reach
// `consume` or `reactivate`. Acquire the element.
extern "C++" int sw_scheduled_visit(void* visitor, void* elem)
    __asm__("_ZN3caf15scheduled_actor15mailbox_visitorclERNS_15mailbox_"
            "elementE");
int sw_scheduled_visit(void* visitor, void* elem) {
  SW_REAL(int (*)(void*, void*),
          "_ZN3caf15scheduled_actor15mailbox_visitorclERNS_15mailbox_"
          "elementE");
  __tsan_acquire(elem);
  return real(visitor, elem);
}

// task_result caf::blocking_actor::mailbox_visitor::operator()(
// mailbox_element&): a blocking actor's receive looking at each element.
extern "C++" int sw_blocking_visit(void* visitor, void* elem)
    __asm__("_ZN3caf14blocking_actor15mailbox_visitorclERNS_15mailbox_"
            "elementE");
int sw_blocking_visit(void* visitor, void* elem) {
  SW_REAL(int (*)(void*, void*),
          "_ZN3caf14blocking_actor15mailbox_visitorclERNS_15mailbox_"
          "elementE");
  __tsan_acquire(elem);
  return real(visitor, elem);
}

// mailbox_element_ptr caf::blocking_actor::dequeue(): returned through the
// hidden pointer `result`.
extern "C++" void** sw_blocking_dequeue(void** result, void* self)
    __asm__("_ZN3caf14blocking_actor7dequeueEv");
void** sw_blocking_dequeue(void** result, void* self) {
  SW_REAL(void** (*)(void**, void*), "_ZN3caf14blocking_actor7dequeueEv");
  real(result, self);
  if (*result != nullptr) __tsan_acquire(*result);
  return result;
}

// bool caf::scheduled_actor::cleanup(error&&, execution_unit*) and the same
// of blocking_actor: the actor terminates; CAF closes its mailbox (an
// exchange on the inbox's head: acquire of every push so far) and destroys
// the elements left in it without handing them to the actor, so the
// per-element acquire above never runs for them. Acquire the mailbox as a
// whole here; every enqueue released it. That covers the pushes made before
// cleanup starts; an element pushed while cleanup runs (another actor's
// finalize sending its down_msg in the same instant) is acquired by the
// bouncer below, which sees every element the close drains.
extern "C++" bool sw_scheduled_cleanup(void* self, void* err, void* eu)
    __asm__("_ZN3caf15scheduled_actor7cleanupEONS_5errorEPNS_14execution_"
            "unitE");
bool sw_scheduled_cleanup(void* self, void* err, void* eu) {
  SW_REAL(bool (*)(void*, void*, void*),
          "_ZN3caf15scheduled_actor7cleanupEONS_5errorEPNS_14execution_unitE");
  __tsan_acquire(const_cast<void*>(mailbox_of(self)));
  return real(self, err, eu);
}

extern "C++" bool sw_blocking_cleanup(void* self, void* err, void* eu)
    __asm__("_ZN3caf14blocking_actor7cleanupEONS_5errorEPNS_14execution_"
            "unitE");
bool sw_blocking_cleanup(void* self, void* err, void* eu) {
  SW_REAL(bool (*)(void*, void*, void*),
          "_ZN3caf14blocking_actor7cleanupEONS_5errorEPNS_14execution_unitE");
  __tsan_acquire(const_cast<void*>(mailbox_of(self)));
  return real(self, err, eu);
}

// task_result caf::detail::sync_request_bouncer::operator()(
// const mailbox_element&) const: the visitor with which cleanup drains a
// closed mailbox (scheduled and blocking actors); each element is destroyed
// right after it. Acquire the element, released by its enqueue: a push that
// raced with the close is ordered before its destruction here, as the
// close's exchange orders it in CAF.
extern "C++" int sw_bounce(const void* bouncer, const void* elem)
    __asm__("_ZNK3caf6detail20sync_request_bouncerclERKNS_15mailbox_"
            "elementE");
int sw_bounce(const void* bouncer, const void* elem) {
  SW_REAL(int (*)(const void*, const void*),
          "_ZNK3caf6detail20sync_request_bouncerclERKNS_15mailbox_elementE");
  __tsan_acquire(const_cast<void*>(elem));
  return real(bouncer, elem);
}

// bool caf::intrusive::fifo_inbox<blocking_actor::mailbox_policy>::
// fetch_more(): a blocking actor (scoped_actor, ...) moving what was pushed
// onto its LIFO inbox into its FIFO queue, reading the pushed elements'
// links and contents. It is a template: each executable that uses a
// blocking actor's mailbox has an instrumented copy, which libcaf calls
// through its PLT, so its reads come before the per-element acquire of the
// visitor above. Only the inbox pointer is known here, not its actor, so
// every blocking enqueue also releases one address shared by all blocking
// inboxes, acquired here: an over-approximation (a blocking actor's fetch
// is ordered after every blocking enqueue in the process), which can hide a
// race only between two threads that both talk to blocking actors. The
// definition here takes the place of the executable's own (weak) copy;
// `real` is libcaf_core's exported one (uninstrumented).
extern "C++" bool sw_blocking_fetch_more(void* inbox)
    __asm__("_ZN3caf9intrusive10fifo_inboxINS_14blocking_actor14mailbox_"
            "policyEE10fetch_moreEv");
bool sw_blocking_fetch_more(void* inbox) {
  SW_REAL(bool (*)(void*),
          "_ZN3caf9intrusive10fifo_inboxINS_14blocking_actor14mailbox_"
          "policyEE10fetch_moreEv");
  __tsan_acquire(&blocking_inboxes);
  return real(inbox);
}

// ---- 3. scheduling ---------------------------------------------------------

// resume_result caf::scheduled_actor::resume(execution_unit*, size_t)
extern "C++" int sw_scheduled_resume(void* self, void* eu, std::size_t n)
    __asm__("_ZN3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
int sw_scheduled_resume(void* self, void* eu, std::size_t n) {
  SW_REAL(int (*)(void*, void*, std::size_t),
          "_ZN3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
  __tsan_acquire(const_cast<void*>(actor_turns(self)));
  int result = real(self, eu, n);
  // The caller still holds its reference to the actor: `self` is alive.
  __tsan_release(const_cast<void*>(actor_turns(self)));
  return result;
}

// The same, entered through the `resumable` base (CAF's schedulers call
// resumable::resume; this thunk jumps straight into resume, not via PLT).
extern "C++" int sw_scheduled_resume_thunk(void* as_resumable, void* eu,
                                           std::size_t n)
    __asm__("_ZThn160_N3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
int sw_scheduled_resume_thunk(void* as_resumable, void* eu, std::size_t n) {
  SW_REAL(int (*)(void*, void*, std::size_t),
          "_ZThn160_N3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
  // sub $0xa0,%rdi
  SW_EXPECT("resumable thunk of scheduled_actor::resume", 0x48, 0x81, 0xef,
            0xa0, 0x00, 0x00, 0x00);
  return sw_scheduled_resume(
      static_cast<char*>(as_resumable) - scheduled_actor_resumable, eu, n);
}

// void caf::scheduled_actor::launch(execution_unit*, bool lazy, bool hide):
// what the spawning thread wrote (construction) happens before the first
// turn, wherever it runs.
extern "C++" void sw_scheduled_launch(void* self, void* eu, bool lazy,
                                      bool hide)
    __asm__("_ZN3caf15scheduled_actor6launchEPNS_14execution_unitEbb");
void sw_scheduled_launch(void* self, void* eu, bool lazy, bool hide) {
  SW_REAL(void (*)(void*, void*, bool, bool),
          "_ZN3caf15scheduled_actor6launchEPNS_14execution_unitEbb");
  __tsan_release(const_cast<void*>(actor_turns(self)));
  real(self, eu, lazy, hide);
}

// ---- 4. node identities ----------------------------------------------------
//
// A remote node's identity (caf::node_id, one intrusive_ptr to a data
// block) is made on the multiplexer thread that reads a BASP handshake
// (node_id::deserialize allocates the block and copies the host id into
// it) and is handed to other threads through libcaf_io's broker queues,
// which are neither scheduled_actor mailboxes nor interposable (inline).
// Readers compare it (node_id::compare, the proxy registry's and the
// routing tables' key comparison: a memcmp TSan sees) or write it out
// again (node_id::serialize). Modelled as a publication: release on the
// data block when deserialize returns (every write to the block is inside
// it), acquire on the blocks before a compare or serialize reads them. A
// reader that really ran during the deserialize would not get that
// release and would still be reported.

namespace {
// CAF 0.17.6: node_id { intrusive_ptr<data> data_; }: compare starts with
// `cmp %rsi,%rdi; je; mov (%rdi),%rdi`. Read without instrumentation: the
// node_id may sit in memory that CAF's uninstrumented code wrote, and this
// read is the shim's, not the program's.
__attribute__((no_sanitize("thread"))) void* node_data(const void* node_id) {
  return *static_cast<void* const*>(node_id);
}

void acquire_node(const void* node_id) {
  if (void* block = node_data(node_id)) __tsan_acquire(block);
}
} // namespace

// error caf::node_id::deserialize(deserializer&): the error is returned
// through a hidden pointer (first argument), `this` comes second.
extern "C++" void* sw_node_id_deserialize(void* result, void* self,
                                          void* source)
    __asm__("_ZN3caf7node_id11deserializeERNS_12deserializerE");
void* sw_node_id_deserialize(void* result, void* self, void* source) {
  SW_REAL(void* (*)(void*, void*, void*),
          "_ZN3caf7node_id11deserializeERNS_12deserializerE");
  void* out = real(result, self, source);
  if (void* block = node_data(self)) __tsan_release(block);
  return out;
}

// int caf::node_id::compare(const node_id&) const
extern "C++" int sw_node_id_compare(const void* self, const void* other)
    __asm__("_ZNK3caf7node_id7compareERKS0_");
int sw_node_id_compare(const void* self, const void* other) {
  SW_REAL(int (*)(const void*, const void*), "_ZNK3caf7node_id7compareERKS0_");
  // cmp %rsi,%rdi; je +0x2b; mov (%rdi),%rdi: data_ at offset 0
  SW_EXPECT("node_id::compare", 0x48, 0x39, 0xf7, 0x74, 0x2b, 0x48, 0x8b,
            0x3f);
  acquire_node(self);
  acquire_node(other);
  return real(self, other);
}

// error caf::node_id::serialize(serializer&) const (hidden result pointer
// first, as for deserialize).
extern "C++" void* sw_node_id_serialize(void* result, const void* self,
                                        void* sink)
    __asm__("_ZNK3caf7node_id9serializeERNS_10serializerE");
void* sw_node_id_serialize(void* result, const void* self, void* sink) {
  SW_REAL(void* (*)(void*, const void*, void*),
          "_ZNK3caf7node_id9serializeERNS_10serializerE");
  acquire_node(self);
  return real(result, self, sink);
}
