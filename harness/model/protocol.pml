/*
 * The order/payment protocol, model-checked with spin (see README,
 * "The protocol, model-checked"): one order, two payment creations racing,
 * a client changing or deleting the order, a client settling the payment,
 * the expiry, the resolver of stale intents, two dispatchers that may stop
 * holding a claim, and a network that loses, duplicates and reorders
 * deliveries. Each step stands for one statement or call of the services;
 * the README maps them to the code.
 *
 * A creation first records its payment as an intent in payment-service
 * (or adopts the payment or intent the order already has), then asks
 * order-service to attach it to the order; on OK it marks the payment
 * attached, on a refusal it asks order-service to release it and, once
 * released, deletes the intent. A call to order-service may time out
 * while the request is still queued there and is applied later; the
 * creation then stops, either before attaching, after asking to attach or
 * after asking to release, and the intent stays until the resolver
 * releases it (or finds it attached).
 *
 * Checked when nothing can move any more (`timeout`): a payment that
 * succeeded left its order paid by it at its amount; a failed or expired
 * payment left its order failed; every recorded outcome was delivered,
 * none refused; no order is frozen by a payment payment-service never
 * recorded (a pending order's attached payment is recorded there, and
 * attached, not an intent); no intent is left over; no deleted intent is
 * the payment attached to or settling the order. The order is paid at
 * most once, by one payment (asserted where it is settled).
 *
 * Broken variants, each of which the checker must catch:
 *   spin -DBROKEN          the attachment skips the amount check;
 *   spin -DBROKEN_INTENT   a creation attaches first and records the payment
 *                          only after order-service's OK (the protocol
 *                          before intents): an attachment applied after
 *                          its caller timed out freezes the order;
 *   spin -DBROKEN_RELEASE  the release does not remember the payment it
 *                          released, so an attachment still queued at
 *                          order-service is applied after the intent was
 *                          released and deleted.
 */

#define NONE 0

/* order-service attaches a payment only to an order of the payment's
 * amount (1); the broken variant forgets to check. */
#ifdef BROKEN
#define ATTACHABLE_TOTAL true
#else
#define ATTACHABLE_TOTAL (ototal == 1)
#endif

/* order-service's RELEASE_PAYMENT adds the payment to the order's
 * released_payments, which ATTACH_PAYMENT refuses for ever after; the
 * broken variant does not. */
#ifdef BROKEN_RELEASE
#define REMEMBER_RELEASED(q) skip
#else
#define REMEMBER_RELEASED(q) oreleased = oreleased | (1 << (q))
#endif
#define IS_RELEASED(q) ((oreleased >> (q)) & 1)
#define IS_FORGOTTEN(q) ((pforgotten >> (q)) & 1)

mtype = { PENDING, PAID, FAILED, DELETED };           /* order */
mtype = { P_NONE, P_PENDING, P_SUCCESS, P_FAILED };   /* payment */
mtype = { N_NONE, N_PEND, N_DELIVERED, N_REJECTED };  /* outcome record */
mtype = { OK, REFUSED };     /* order-service's answer to a settlement or an attachment */
mtype = { ATTACH, RELEASE }; /* payment-service's requests to order-service */
mtype = { ATTACHED, RELEASED };                       /* its answer to a release */

/* order-service's database: the order */
mtype ostatus = PENDING;
byte ototal = 1;
byte oattached = NONE;   /* the payment under way */
byte opaid_by = NONE;    /* the payment that settled it */
byte oreleased = 0;      /* released_payments: bit p once p is released */

/* payment-service's database: the order's one payment (or intent) and its outcome */
byte prow = NONE;
bool pattached = false;  /* false: an intent, which nothing settles or expires */
mtype pstatus = P_NONE;
byte pamount = 0;
mtype nstate = N_NONE;
bool nsuccess = false;
byte nlock = NONE;       /* the dispatcher holding the claim */
byte pforgotten = 0;     /* bit p once the intent p was deleted (only for the check) */

/* deliveries in flight: payment, success, amount, sender */
chan net = [4] of { byte, bool, byte, byte };
chan answer[3] = [4] of { mtype };

byte losses = 0;         /* bounded, so that retries end */
#define MAX_LOSSES 1

/* payment-service's calls to order-service, one queue per caller: the
 * resolver is caller 0, creation p is caller p. A request (kind, payment)
 * waits in its queue until order-service applies it, whether or not its
 * caller still waits; the answer (answer, payment) comes back the same way. */
#define RESOLVER 0
chan ocall[3] = [1] of { mtype, byte };
chan oreply[3] = [1] of { mtype, byte };

byte rlosses = 0;        /* answers the resolver gave up on; bounded, so that it ends */
#define MAX_RESOLVER_LOSSES 1

/* payment-service's store.confirm: the intent becomes an attached pending payment */
inline confirm(q) {
    if
    :: prow == q -> pattached = true
    :: else -> skip
    fi
}

/* payment-service's store.forget_intent: deletes the payment if it is still an intent */
inline forget(q) {
    if
    :: prow == q && !pattached ->
       prow = NONE; pstatus = P_NONE; pamount = 0; pforgotten = pforgotten | (1 << (q))
    :: else -> skip
    fi
}

/* payments.rs create. Creation c records the intent c (store.insert_intent,
 * one INSERT, unique per order) or adopts the payment or intent p the order
 * has, asks order-service to attach p (order_gateway::attach_payment), and on
 * OK marks it attached (store.confirm); on a refusal it asks order-service to
 * release p (order_gateway::release_payment) and on RELEASED deletes the
 * intent (store.forget_intent), on ATTACHED marks it attached. A call may
 * time out: the creation answers "outcome unknown, retry" and stops, and
 * its request is still applied later. Giving up at once or after waiting
 * a while is the same to everyone else, so it is chosen with the call. */
proctype Create(byte c) {
    byte p;
    mtype r;
#ifdef BROKEN_INTENT
    /* The protocol before intents: attach first, record after the OK. */
    atomic {
        p = c;
        ocall[c]!ATTACH, p;
        if
        :: skip
        :: goto stopped  /* times out: nothing recorded */
        fi
    };
    atomic { oreply[c]?r, eval(p) ->
        if
        :: r == OK && prow == NONE -> prow = p; pattached = true; pstatus = P_PENDING; pamount = 1
        :: else -> skip
        fi };
#else
    atomic {
        if
        :: prow == NONE -> prow = c; pattached = false; pstatus = P_PENDING; pamount = 1; p = c
        :: else -> p = prow
        fi;
        if
        :: ocall[c]!ATTACH, p
        :: goto stopped  /* payment-service stops before attaching */
        fi;
        if
        :: skip
        :: goto stopped  /* times out; the attachment is applied whenever order-service gets to it */
        fi
    };
    if
    :: atomic { oreply[c]?OK, eval(p) -> confirm(p) }
    :: atomic { oreply[c]?REFUSED, eval(p) ->
           ocall[c]!RELEASE, p;
           if
           :: skip
           :: goto stopped  /* times out; the release is applied later */
           fi };
       atomic { oreply[c]?r, eval(p) ->
           if
           :: r == RELEASED -> forget(p)
           :: r == ATTACHED -> confirm(p)
           fi }
    fi;
#endif
stopped:
    atomic { p = 0; r = 0 };
end:
    do
    :: oreply[c]?_, _    /* an answer that came after the creation gave up: read by nobody */
    od
}

/* expiry.rs, resolving stale intents: for an intent p, release_payment, then
 * store.forget_intent on RELEASED or store.confirm on ATTACHED. The code
 * waits until the intent is older than a few order-service timeouts; the
 * model lets it ask at any time, and again after losing an answer, up to
 * MAX_RESOLVER_LOSSES times; after that it gets its answer. (A lost answer
 * stands also for a release applied after the resolver gave up: a release
 * changes nothing once it has been applied or the payment is attached, so
 * that is the same as the resolver asking again at that later time.) */
proctype Resolver() {
    byte p;
    mtype r;
end:
    do
    :: atomic { prow != NONE && !pattached -> p = prow; ocall[RESOLVER]!RELEASE, p };
       if
       :: atomic { oreply[RESOLVER]?r, eval(p) ->
              if
              :: r == RELEASED -> forget(p)
              :: r == ATTACHED -> confirm(p)
              fi;
              p = 0; r = 0 }
       :: atomic { rlosses < MAX_RESOLVER_LOSSES && nempty(oreply[RESOLVER]) ->
              oreply[RESOLVER]?_, _; rlosses++; p = 0 }   /* times out */
       fi
    od
}

/* orders.rs update / delete: only a pending order with no payment under way */
proctype Client() {
    if
    :: atomic { ostatus == PENDING && oattached == NONE -> ototal = 2 }
    :: atomic { ostatus == PENDING && oattached == NONE -> ostatus = DELETED }
    :: skip
    fi
}

/* delivery/outbox.rs SETTLE_PENDING: the payment's change and its outcome's record in
 * one statement; an intent is not settled */
proctype Settle() {
    if
    :: atomic { prow != NONE && pattached && pstatus == P_PENDING ->
                pstatus = P_SUCCESS; nstate = N_PEND; nsuccess = true }
    :: atomic { prow != NONE && pattached && pstatus == P_PENDING ->
                pstatus = P_FAILED; nstate = N_PEND; nsuccess = false }
    :: skip
    fi
}

/* delivery/outbox.rs EXPIRE_STALE: attached pending payments only, never an intent */
proctype Expire() {
    if
    :: atomic { prow != NONE && pattached && pstatus == P_PENDING ->
                pstatus = P_FAILED; nstate = N_PEND; nsuccess = false }
    :: skip
    fi
}

/* delivery/dispatcher.rs: claim under a lease, deliver, record the answer. A
 * delivery may be duplicated or lost (then retried), and the instance may
 * stop right after sending: its lease ends and another instance delivers
 * again. Each payment has one outcome, so deliveries reordered among
 * themselves carry the same report. */
proctype Dispatcher(byte d) {
    mtype reply;
end:
    do
    :: atomic { nstate == N_PEND && nlock == NONE -> nlock = d };
       if
       :: net!prow, nsuccess, pamount, d
       :: net!prow, nsuccess, pamount, d; net!prow, nsuccess, pamount, d
       :: atomic { losses < MAX_LOSSES -> losses++; nlock = NONE }; goto next
       :: atomic { losses < MAX_LOSSES -> losses++ };
          net!prow, nsuccess, pamount, d; nlock = NONE; goto next
       fi;
       answer[d]?reply;
       atomic {
           if
           :: nstate == N_PEND && reply == OK -> nstate = N_DELIVERED
           :: nstate == N_PEND && reply == REFUSED -> nstate = N_REJECTED
           :: else -> skip
           fi;
           nlock = NONE
       };
next:  skip
    od
}

/* order-service's store.rs ATTACH_PAYMENT (one conditional UPDATE: pending,
 * no payment or this one, the payment's amount, not released) and
 * RELEASE_PAYMENT (one statement on the order row: ATTACHED if the order's
 * payment is p, else p joins released_payments if the order is pending, and
 * RELEASED; orders.rs release_payment reads the order again when nothing
 * changed, which answers the same, each case being final), asked by caller c */
inline order_request(c) {
    if
    :: kind == ATTACH ->
       if
       :: ostatus == PENDING && (oattached == NONE || oattached == p) &&
          ATTACHABLE_TOTAL && !IS_RELEASED(p) ->
             oattached = p; oreply[c]!OK, p
       :: else -> oreply[c]!REFUSED, p
       fi
    :: kind == RELEASE ->
       if
       :: oattached == p || opaid_by == p -> oreply[c]!ATTACHED, p
       :: else ->
          if
          :: ostatus == PENDING -> REMEMBER_RELEASED(p)
          :: else -> skip   /* deleted, or settled by another: never attachable again */
          fi;
          oreply[c]!RELEASED, p
       fi
    fi
}

/* order-service: orders.rs settle (SETTLE_PENDING), and the attachments and
 * releases payment-service asked for, each applied at some later point */
proctype OrderService() {
    byte p, amount, d;
    bool success;
    mtype kind;
end:
    do
    :: net??p, success, amount, d ->
       atomic {
           if
           :: ostatus == PENDING && (oattached == NONE || oattached == p) &&
              (success == false || ototal == amount) ->
                 assert(opaid_by == NONE);
                 opaid_by = p;
                 if
                 :: success -> ostatus = PAID
                 :: else -> ostatus = FAILED
                 fi;
                 answer[d]!OK
           :: else ->
              if
              :: (ostatus == PAID && success || ostatus == FAILED && success == false) && opaid_by == p ->
                 answer[d]!OK       /* the same report again */
              :: else -> answer[d]!REFUSED
              fi
           fi;
           p = 0; success = false; amount = 0; d = 0
       }
    :: atomic { ocall[0]?kind, p -> order_request(0); kind = 0; p = 0 }
    :: atomic { ocall[1]?kind, p -> order_request(1); kind = 0; p = 0 }
    :: atomic { ocall[2]?kind, p -> order_request(2); kind = 0; p = 0 }
    od
}

init {
    atomic {
        run Create(1); run Create(2); run Client(); run Settle(); run Expire();
        run Dispatcher(1); run Dispatcher(2); run OrderService(); run Resolver()
    }
    timeout ->
    /* Nothing can move any more: the two services must agree. */
    assert(nstate != N_REJECTED);
    assert(nstate != N_PEND || pstatus == P_PENDING);
    if
    :: pstatus == P_SUCCESS ->
       assert(ostatus == PAID && opaid_by == prow && ototal == pamount && nstate == N_DELIVERED)
    :: pstatus == P_FAILED ->
       assert(ostatus == FAILED && opaid_by == prow && nstate == N_DELIVERED)
    :: else -> assert(ostatus != PAID && ostatus != FAILED)
    fi;
    /* No intent is left over: the resolver resolved it. */
    assert(prow == NONE || pattached);
    /* No order is frozen by a payment payment-service never recorded. */
    assert(ostatus != PENDING || oattached == NONE || (prow == oattached && pattached));
    /* A deleted intent is not the order's payment. */
    assert(!IS_FORGOTTEN(oattached) && !IS_FORGOTTEN(opaid_by))
}
