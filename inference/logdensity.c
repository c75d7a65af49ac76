/* logdensity.c — being written */
