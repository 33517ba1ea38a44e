/*
 * The order/payment protocol, model-checked with spin (see README,
 * "The protocol, model-checked"): one order, two payment creations racing
 * (either may stop between its two steps), a client changing or deleting
 * the order, a client settling the payment, the expiry, two dispatchers
 * that may stop holding a claim, and a network that loses, duplicates and
 * reorders deliveries. Each step stands for one statement or call of the
 * services; the README maps them to the code.
 *
 * Checked when nothing can move any more (`timeout`): a payment that
 * succeeded left its order paid by it at its amount; a failed or expired
 * payment left its order failed; every recorded outcome was delivered,
 * none refused. The order is paid at most once, by one payment (asserted
 * where it is settled).
 *
 * `spin -DBROKEN` drops the attachment's amount check: the checker must
 * then find a counterexample.
 */

#define NONE 0

/* order-service attaches a payment only to an order of the payment's
 * amount (1); the broken variant forgets to check. */
#ifdef BROKEN
#define ATTACHABLE_TOTAL true
#else
#define ATTACHABLE_TOTAL (ototal == 1)
#endif

mtype = { PENDING, PAID, FAILED, DELETED };           /* order */
mtype = { P_NONE, P_PENDING, P_SUCCESS, P_FAILED };   /* payment */
mtype = { N_NONE, N_PEND, N_DELIVERED, N_REJECTED };  /* outcome record */
mtype = { OK, REFUSED };                              /* order-service's answer */

/* order-service's database: the order */
mtype ostatus = PENDING;
byte ototal = 1;
byte oattached = NONE;   /* the payment under way */
byte opaid_by = NONE;    /* the payment that settled it */

/* payment-service's database: the order's one payment and its outcome */
byte prow = NONE;
mtype pstatus = P_NONE;
byte pamount = 0;
mtype nstate = N_NONE;
bool nsuccess = false;
byte nlock = NONE;       /* the dispatcher holding the claim */

/* deliveries in flight: payment, success, amount, sender */
chan net = [4] of { byte, bool, byte, byte };
chan answer[3] = [4] of { mtype };

byte losses = 0;         /* bounded, so that retries end */
#define MAX_LOSSES 1

/* payments.rs create: attach (order-service, one UPDATE), then record
 * (payment-service, one INSERT), or adopt the payment already attached. */
proctype Create(byte p) {
    bool attached = false;
    byte adopt = NONE;
    atomic {
        if
        :: ostatus == PENDING && (oattached == NONE || oattached == p) && ATTACHABLE_TOTAL ->
           oattached = p; attached = true
        :: else ->
            if
            :: ostatus == PENDING && oattached != NONE && oattached != p -> adopt = oattached
            :: else -> skip
            fi
        fi
    }
    if
    :: skip
    :: goto stopped      /* payment-service stops between the two steps */
    fi;
    atomic {
        if
        :: attached && prow == NONE -> prow = p; pstatus = P_PENDING; pamount = 1
        :: adopt != NONE && prow == NONE && ostatus == PENDING && ototal == 1 ->
            prow = adopt; pstatus = P_PENDING; pamount = 1
        :: else -> skip   /* refused, or another create recorded it */
        fi
    }
stopped:
    skip
}

/* orders.rs update / delete: only a pending order with no payment under way */
proctype Client() {
    if
    :: atomic { ostatus == PENDING && oattached == NONE -> ototal = 2 }
    :: atomic { ostatus == PENDING && oattached == NONE -> ostatus = DELETED }
    :: skip
    fi
}

/* store.rs SETTLE_PENDING: the payment's change and its outcome's record in one statement */
proctype Settle() {
    if
    :: atomic { prow != NONE && pstatus == P_PENDING ->
                pstatus = P_SUCCESS; nstate = N_PEND; nsuccess = true }
    :: atomic { prow != NONE && pstatus == P_PENDING ->
                pstatus = P_FAILED; nstate = N_PEND; nsuccess = false }
    :: skip
    fi
}

/* store.rs EXPIRE_STALE */
proctype Expire() {
    if
    :: atomic { prow != NONE && pstatus == P_PENDING ->
                pstatus = P_FAILED; nstate = N_PEND; nsuccess = false }
    :: skip
    fi
}

/* dispatcher.rs: claim under a lease, deliver, record the answer. A
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

/* orders.rs settle: SETTLE_PENDING on order-service */
proctype OrderService() {
    byte p, amount, d;
    bool success;
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
           fi
       }
    od
}

init {
    atomic {
        run Create(1); run Create(2); run Client(); run Settle(); run Expire();
        run Dispatcher(1); run Dispatcher(2); run OrderService()
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
    fi
}
